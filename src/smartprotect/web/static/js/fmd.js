// An FMD phone's data, opened in this browser with its FMD password, which is never sent
// anywhere: Argon2id (hash-wasm, vendored) derives the keys, the Web Crypto API does the rest.
// Commands are signed (FMD protocol v1: RSA-PSS) or encrypted (v2: AES-GCM) here before they
// are sent. The formats are the FMD server protocol's; see privacy/rights/export.py for the
// same steps in words.
(function () {
  "use strict";
  var encoder = new TextEncoder();
  var decoder = new TextDecoder();
  var subtle = window.crypto.subtle;

  function toBase64(bytes) {
    var text = "";
    for (var i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  }
  function fromBase64(text) {
    text = text.replace(/-/g, "+").replace(/_/g, "/").replace(/\s+/g, "");
    while (text.length % 4) { text += "="; }
    var raw = atob(text);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes;
  }
  function fromHex(text) {
    var bytes = new Uint8Array(text.length / 2);
    for (var i = 0; i < bytes.length; i++) { bytes[i] = parseInt(text.substr(i * 2, 2), 16); }
    return bytes;
  }
  function toHex(bytes) {
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function concat() {
    var parts = Array.prototype.slice.call(arguments);
    var out = new Uint8Array(parts.reduce(function (n, part) { return n + part.length; }, 0));
    var at = 0;
    parts.forEach(function (part) { out.set(part, at); at += part.length; });
    return out;
  }
  function text(value) { return encoder.encode(value); }

  // FMD's Argon2id: t=1, p=4, m=128 MiB, 32 bytes.
  // The raw key, or (`encoded`) the PHC string the app logs in with.
  function argon2(secret, salt, encoded) {
    return window.hashwasm.argon2id({
      password: secret, salt: salt, parallelism: 4, iterations: 1, memorySize: 131072,
      hashLength: 32, outputType: encoded ? "encoded" : "binary"
    });
  }
  async function aes(operation, keyBytes, iv, data, associated) {
    var key = await subtle.importKey("raw", keyBytes, "AES-GCM", false, [operation]);
    var params = { name: "AES-GCM", iv: iv };
    if (associated) { params.additionalData = associated; }
    return new Uint8Array(await subtle[operation](params, key, data));
  }
  async function hkdf(secret, info) {
    var key = await subtle.importKey("raw", secret, "HKDF", false, ["deriveBits"]);
    var params = { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: info };
    return new Uint8Array(await subtle.deriveBits(params, key, 256));
  }

  // Protocol v1 (the FMD app 0.15): an RSA key pair, the private key wrapped under the
  // password; each item an RSA-OAEP-wrapped AES-GCM key, IV and ciphertext.
  async function openV1(data, password) {
    var wrapped = fromBase64(data.private_key);
    var wrapKey = await argon2(text("context:asymmetricKeyWrap" + password), wrapped.subarray(0, 16));
    var pem = decoder.decode(await aes("decrypt", wrapKey, wrapped.subarray(16, 28), wrapped.subarray(28)));
    var der = fromBase64(pem.replace(/-----[^-]+-----/g, ""));
    var oaep = await subtle.importKey("pkcs8", der, { name: "RSA-OAEP", hash: "SHA-256" }, false, ["decrypt"]);
    var pss = await subtle.importKey("pkcs8", der, { name: "RSA-PSS", hash: "SHA-256" }, false, ["sign"]);
    var size = oaep.algorithm.modulusLength / 8;
    return {
      open: async function (item) {
        var raw = fromBase64(item.ciphertext);
        var key = new Uint8Array(await subtle.decrypt({ name: "RSA-OAEP" }, oaep, raw.subarray(0, size)));
        return aes("decrypt", key, raw.subarray(size, size + 12), raw.subarray(size + 12));
      },
      command: async function (command) {
        var time = Date.now();
        var signature = await subtle.sign({ name: "RSA-PSS", saltLength: 32 }, pss, text(time + ":" + command));
        return { signed: { data: command, unix_time: time, signature: toBase64(new Uint8Array(signature)) } };
      }
    };
  }

  // Protocol v2: a master key encrypted under a key from the password; per kind a key from
  // the master key; per item a key, each bound to the user, kind, item id and time.
  async function openV2(data, password) {
    var user = new Uint8Array(await subtle.digest("SHA-256", text(data.username)));
    var passwordKey = await argon2(concat(text("fmd_v2_password"), user, text(password)), fromBase64(data.salt));
    var premaster = await hkdf(passwordKey, concat(text("fmd_v2_premaster"), user));
    var sealed = fromBase64(data.master_key);
    var master = await aes("decrypt", premaster, sealed.subarray(0, 12), sealed.subarray(12), concat(text("fmd_v2_master"), user));
    var keys = {};
    function kindKey(kind) {
      keys[kind] = keys[kind] || hkdf(master, concat(text("fmd_v2_kek_" + kind), user));
      return keys[kind];
    }
    function bound(kind, id, time) {
      var moment = new Uint8Array(8);
      new DataView(moment.buffer).setBigInt64(0, BigInt(time));
      return concat(text(kind), user, id, moment);
    }
    return {
      open: async function (item, kind) {
        kind = kind || "location";
        var raw = fromBase64(item.ciphertext);
        var context = bound(kind, fromHex(item.id), item.time);
        var itemKey = await aes("decrypt", await kindKey(kind), raw.subarray(0, 12), raw.subarray(12, 60), concat(text("fmd_v2_dek_"), context));
        return aes("decrypt", itemKey, raw.subarray(60, 72), raw.subarray(72), concat(text("fmd_v2_data_"), context));
      },
      command: async function (command) {
        var id = crypto.getRandomValues(new Uint8Array(16));
        var time = Date.now();
        var context = bound("command", id, time);
        var itemKey = crypto.getRandomValues(new Uint8Array(32));
        var keyIv = crypto.getRandomValues(new Uint8Array(12));
        var dataIv = crypto.getRandomValues(new Uint8Array(12));
        var sealedKey = await aes("encrypt", await kindKey("command"), keyIv, itemKey, concat(text("fmd_v2_dek_"), context));
        var sealedData = await aes("encrypt", itemKey, dataIv, text(command), concat(text("fmd_v2_data_"), context));
        return { encrypted: { clientItemIdHex: toHex(id), unixMillis: time,
                              ciphertext64: toBase64(concat(keyIv, sealedKey, dataIv, sealedData)) } };
      }
    };
  }

  // A phone's key material and ciphertext from the server, opened with its password; or
  // which message to show: `msgFailed` (the server did not answer) or `msgWrong`.
  async function openPhone(source, password) {
    var data;
    try {
      var response = await fetch(source, { credentials: "same-origin" });
      if (!response.ok) { throw new Error(String(response.status)); }
      data = await response.json();
    } catch (error) {
      return { failure: "msgFailed" };
    }
    try {
      var opened = data.protocol === 2 ? await openV2(data, password) : await openV1(data, password);
      return { data: data, opened: opened };
    } catch (error) {
      return { failure: "msgWrong" };
    }
  }

  function cell(row, value) {
    var td = document.createElement("td");
    td.textContent = value;
    row.appendChild(td);
  }

  function setUp(section) {
    var status = section.querySelector("[data-fmd-status]");
    var unlock = section.querySelector("[data-fmd-unlock]");
    var opened = null;

    function say(message) { status.textContent = message; }

    async function show(data) {
      var table = section.querySelector("[data-fmd-locations]");
      var body = table.querySelector("tbody");
      body.textContent = "";
      var points = [];
      var fixes = [];
      var unreadable = 0;
      for (var i = data.locations.length - 1; i >= 0; i--) {
        try {
          fixes.push(JSON.parse(decoder.decode(await opened.open(data.locations[i]))));
        } catch (error) {
          unreadable += 1;  // one damaged upload must not hide the others
        }
      }
      fixes.forEach(function (fix) {
        var lat = parseFloat(fix.lat), lon = parseFloat(fix.lon);
        var accuracy = parseFloat(fix.accuracy) || 0;
        var when = fix.date ? new Date(Number(fix.date)).toISOString().replace("T", " ").slice(0, 19) + " UTC" : (fix.time || "");
        var row = document.createElement("tr");
        cell(row, when);
        cell(row, lat.toFixed(5) + ", " + lon.toFixed(5));
        cell(row, "± " + Math.round(accuracy) + " m");
        cell(row, fix.provider || "");
        cell(row, fix.bat !== undefined && fix.bat !== "" ? fix.bat + "%" : "—");
        body.appendChild(row);
        points.push({ lat: lat, lon: lon, accuracy: accuracy, label: when + " · " + (fix.provider || "") });
      });
      table.hidden = fixes.length === 0;
      var map = section.querySelector("[data-fmd-map]");
      if (points.length && window.SmartProtectMap) {
        map.hidden = false;
        window.SmartProtectMap.draw(map, points);
      }
      say((fixes.length ? section.dataset.msgOpened.replace("%(count)s", fixes.length) : section.dataset.msgNone)
          + (unreadable ? " " + section.dataset.msgUnreadable : ""));
      var pictures = section.querySelector("[data-fmd-show-pictures]");
      if (pictures) { pictures.hidden = !data.pictures; pictures.dataset.count = data.pictures; }
      section.querySelectorAll("[data-fmd-actions]").forEach(function (actions) { actions.hidden = false; });
    }

    unlock.addEventListener("submit", async function (event) {
      event.preventDefault();
      say(section.dataset.msgWorking);
      var phone = await openPhone(section.dataset.source, unlock.querySelector("input[type=password]").value);
      if (phone.failure) { say(section.dataset[phone.failure]); return; }
      var data = phone.data;
      opened = phone.opened;
      unlock.querySelector("input[type=password]").value = "";
      try {
        await show(data);
      } catch (error) {
        say(section.dataset.msgUnreadable);
      }
    });

    var showPictures = section.querySelector("[data-fmd-show-pictures]");
    if (showPictures) {
      showPictures.addEventListener("click", async function () {
        var gallery = section.querySelector("[data-fmd-pictures]");
        gallery.textContent = "";
        for (var i = Number(showPictures.dataset.count || 0) - 1; i >= 0; i--) {
          var response = await fetch(section.dataset.source + "/pictures/" + i, { credentials: "same-origin" });
          if (!response.ok) { continue; }
          var picture = decoder.decode(await opened.open(await response.json(), "picture")).trim();
          var image = document.createElement("img");
          image.alt = section.dataset.msgPicture;
          image.src = "data:image/jpeg;base64," + picture.replace(/[^A-Za-z0-9+/=]/g, "");
          gallery.appendChild(image);
        }
      });
    }

    async function send(keyword, command, extra) {
      if (!opened) { return; }
      var payload = await opened.command(command);
      payload.keyword = keyword;
      Object.assign(payload, extra || {});
      var response = await fetch(section.dataset.commands, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": section.dataset.csrf },
        body: JSON.stringify(payload)
      });
      if (response.ok) {
        say(section.dataset.msgSent.replace("%(command)s", keyword));
        return;
      }
      var message = section.dataset.msgFailed;
      try {
        var errors = (await response.json()).errors || {};
        message = Object.keys(errors).map(function (key) { return errors[key]; }).join(" ") || message;
      } catch (error) { /* not JSON: the generic message */ }
      say(message);
    }

    section.querySelectorAll("[data-fmd-command]").forEach(function (button) {
      button.addEventListener("click", function () {
        send(button.dataset.fmdCommand.split(" ")[0], button.dataset.fmdCommand);
      });
    });
    section.querySelectorAll("form[data-fmd-form]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var keyword = form.dataset.fmdForm;
        var argument = (form.querySelector("[data-fmd-argument]") || {}).value || "";
        var extra = {};
        form.querySelectorAll("[data-fmd-extra]").forEach(function (input) {
          extra[input.dataset.fmdExtra] = input.value;
        });
        send(keyword, (keyword + " " + argument).trim(), extra);
      });
    });
  }

  // On the dashboard: a phone's newest location, opened with its password, on the map of
  // all the devices.
  function setUpRow(form) {
    var status = form.querySelector("[data-fmd-row-status]");
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      var phone = await openPhone(form.dataset.source, form.querySelector("input[type=password]").value);
      if (phone.failure) { status.textContent = form.dataset[phone.failure]; return; }
      var data = phone.data, opened = phone.opened;
      if (!data.locations.length) { status.textContent = form.dataset.msgNone; return; }
      var fix = JSON.parse(decoder.decode(await opened.open(data.locations[data.locations.length - 1])));
      var lat = parseFloat(fix.lat), lon = parseFloat(fix.lon), accuracy = parseFloat(fix.accuracy) || 0;
      var cell = form.parentNode;
      cell.textContent = lat.toFixed(5) + ", " + lon.toFixed(5) + " ";
      var meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = "± " + Math.round(accuracy) + " m · " + (fix.provider || "");
      cell.appendChild(meta);
      var map = document.getElementById(form.dataset.mapTarget);
      if (map && window.SmartProtectMap) {
        window.SmartProtectMap.add(map, [{ lat: lat, lon: lon, accuracy: accuracy, label: form.dataset.name }]);
      }
    });
  }

  // An access token to the phone's FMD account, logged in to as FMD clients do (v1 with the
  // app's Argon2id string, v2 with K_auth); null if the ID or password is wrong. The token
  // proves the password to the site, which never sees it.
  async function logIn(id, password) {
    var found = await fetch("/api/v2/account/" + encodeURIComponent(id) + "/salt");
    if (!found.ok) { return null; }
    var account = await found.json();
    var salt = fromBase64(account.salt64);
    var response;
    if (account.protoVersion === 2) {
      var user = new Uint8Array(await subtle.digest("SHA-256", text(id)));
      var passwordKey = await argon2(concat(text("fmd_v2_password"), user, text(password)), salt);
      var auth = await hkdf(passwordKey, concat(text("fmd_v2_auth"), user));
      response = await fetch("/api/v2/account/login", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: id, passwordHash64: toBase64(auth), sessionDurationSeconds: 60 })
      });
      return response.ok ? (await response.json()).accessToken : null;
    }
    var hashed = await argon2(text("context:loginAuthentication" + password), salt, true);
    response = await fetch("/api/v1/requestAccess", {
      method: "PUT", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ IDT: id, Data: hashed, SessionDurationSeconds: 60 })
    });
    return response.ok ? (await response.json()).Data : null;
  }

  function setUpLink(form) {
    var status = form.querySelector("[data-fmd-link-status]");
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      status.textContent = form.dataset.msgWorking;
      var token;
      try {
        token = await logIn(form.elements.fmd_id.value.trim(), form.querySelector("input[type=password]").value);
      } catch (error) {
        status.textContent = form.dataset.msgFailed;
        return;
      }
      if (!token) { status.textContent = form.dataset.msgWrong; return; }
      form.elements.fmd_token.value = token;
      form.submit();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-fmd]").forEach(setUp);
    document.querySelectorAll("[data-fmd-row]").forEach(setUpRow);
    document.querySelectorAll("[data-fmd-link]").forEach(setUpLink);
  });
})();

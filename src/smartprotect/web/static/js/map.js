// Draws device locations on a Leaflet map. The data comes from data- attributes, so the page
// needs no inline script (the Content-Security-Policy forbids it). Without a tile server the
// map still shows the points and their accuracy circles on a plain background.
(function () {
  "use strict";
  // Adds points to the element's map (made on first use) and fits it to all of them.
  function add(element, points) {
    if (!points.length || typeof L === "undefined") { return; }
    var state = element.smartProtectMap;
    if (!state) {
      element.hidden = false;
      L.Icon.Default.imagePath = "/static/vendor/leaflet/images/";
      var map = L.map(element, { attributionControl: Boolean(element.dataset.tiles) });
      if (element.dataset.tiles) {
        L.tileLayer(element.dataset.tiles, {
          maxZoom: 19, attribution: element.dataset.attribution || ""
        }).addTo(map);
      }
      state = element.smartProtectMap = { map: map, bounds: [] };
    }
    points.forEach(function (point, index) {
      var where = [point.lat, point.lon];
      state.bounds.push(where);
      L.circle(where, { radius: point.accuracy, weight: 1, fillOpacity: 0.15 }).addTo(state.map);
      var marker = index === 0 || element.dataset.markers === "all"
        ? L.marker(where) : L.circleMarker(where, { radius: 3 });
      marker.addTo(state.map).bindPopup(point.label);
    });
    state.map.fitBounds(state.bounds, { maxZoom: 15, padding: [30, 30] });
  }
  // Draws these points (or the element's data-points) afresh.
  function draw(element, given) {
    if (element.smartProtectMap) {
      element.smartProtectMap.map.remove();
      element.smartProtectMap = null;
    }
    add(element, given || JSON.parse(element.dataset.points || "[]"));
  }
  // Also for points opened in the browser (an FMD phone's, fmd.js).
  window.SmartProtectMap = { draw: draw, add: add };
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-map]").forEach(function (element) { draw(element); });
  });
})();

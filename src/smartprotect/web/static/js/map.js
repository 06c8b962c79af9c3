// Draws device locations on a Leaflet map. The data comes from data- attributes, so the page
// needs no inline script (the Content-Security-Policy forbids it). Without a tile server the
// map still shows the points and their accuracy circles on a plain background.
(function () {
  "use strict";
  function draw(element, given) {
    var points = given || JSON.parse(element.dataset.points || "[]");
    if (!points.length || typeof L === "undefined") { return; }
    L.Icon.Default.imagePath = "/static/vendor/leaflet/images/";
    var map = L.map(element, { attributionControl: Boolean(element.dataset.tiles) });
    if (element.dataset.tiles) {
      L.tileLayer(element.dataset.tiles, {
        maxZoom: 19, attribution: element.dataset.attribution || ""
      }).addTo(map);
    }
    var bounds = [];
    points.forEach(function (point, index) {
      var where = [point.lat, point.lon];
      bounds.push(where);
      L.circle(where, { radius: point.accuracy, weight: 1, fillOpacity: 0.15 }).addTo(map);
      var marker = index === 0 || element.dataset.markers === "all"
        ? L.marker(where) : L.circleMarker(where, { radius: 3 });
      marker.addTo(map).bindPopup(point.label);
    });
    map.fitBounds(bounds, { maxZoom: 15, padding: [30, 30] });
  }
  // Also for points opened in the browser (an FMD phone's, fmd.js).
  window.SmartProtectMap = { draw: draw };
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-map]").forEach(function (element) { draw(element); });
  });
})();

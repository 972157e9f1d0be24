// Self-check read by the headless-browser test: uncaught errors go to
// body[data-errors]; after load, body[data-images-ok] says whether every
// <img> decoded, and body[data-images-bad] lists those that did not.
(function () {
  var errors = [];
  function note() {
    if (document.body) document.body.setAttribute("data-errors", errors.join(" | "));
  }
  window.addEventListener("error", function (e) {
    errors.push(e.message || ("failed to load " + ((e.target && (e.target.src || e.target.href)) || "a resource")));
    note();
  }, true);
  window.addEventListener("load", function () {
    var imgs = document.images, bad = [];
    for (var i = 0; i < imgs.length; i++) {
      var im = imgs[i];
      if (!(im.complete && im.naturalWidth > 0)) bad.push(im.getAttribute("data-file") || String(i));
    }
    // Rendered geometry of every image (CSS px, page coordinates):
    // "file:left,top,width,height;..." for the layout test.
    var geo = [];
    for (var j = 0; j < imgs.length; j++) {
      var r = imgs[j].getBoundingClientRect();
      geo.push((imgs[j].getAttribute("data-file") || String(j)) + ":" + [Math.round(r.left + window.scrollX), Math.round(r.top + window.scrollY), Math.round(r.width), Math.round(r.height)].join(","));
    }
    document.body.setAttribute("data-image-boxes", geo.join(";"));
    document.body.setAttribute("data-page-size", document.documentElement.scrollWidth + "," + document.documentElement.scrollHeight);
    document.body.setAttribute("data-images", String(imgs.length));
    document.body.setAttribute("data-images-ok", bad.length === 0 && imgs.length > 0 ? "true" : "false");
    document.body.setAttribute("data-images-bad", bad.join(" "));
    note();
  });
})();

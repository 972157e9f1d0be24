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
    document.body.setAttribute("data-images", String(imgs.length));
    document.body.setAttribute("data-images-ok", bad.length === 0 && imgs.length > 0 ? "true" : "false");
    document.body.setAttribute("data-images-bad", bad.join(" "));
    note();
  });
})();

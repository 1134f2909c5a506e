// ipywidgets' embed manager typesets widget labels with the MathJax 2 API
// (`window.MathJax !== undefined && MathJax.Hub.Queue([...])`). Sphinx loads MathJax 3, which has
// no `Hub`, and before it loads -- or offline, when it never does -- `window.MathJax` is only
// Sphinx's configuration object. Either way every widget threw a TypeError. This shim gives
// `window.MathJax` a `Hub.Queue` that hands the element to MathJax 3 when it is there, and puts
// it back once MathJax 3 has replaced the object at start-up. Loaded before embed.js
// (_config.yml: nb_ipywidgets_js).
(function () {
  var hub = {
    Queue: function (job) {
      var mj = window.MathJax;
      var element = Array.isArray(job) ? job[2] : undefined;
      if (mj && typeof mj.typesetPromise === "function") {
        mj.typesetPromise(element ? [element] : undefined).catch(function () {});
      }
    },
  };
  var mj = (window.MathJax = window.MathJax || {});
  if (mj.Hub) return;
  mj.Hub = hub;
  if (!mj.version) {
    // still a configuration object: have MathJax 3 restore the shim when it starts up
    var startup = (mj.startup = mj.startup || {});
    var ready = startup.ready;
    startup.ready = function () {
      if (ready) ready();
      else window.MathJax.startup.defaultReady();
      if (!window.MathJax.Hub) window.MathJax.Hub = hub;
    };
  }
})();

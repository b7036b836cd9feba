// What jsdom lacks and JupyterLab/Lumino touch at import or render time
// (the same gaps @jupyterlab/testing's jest-shim fills).
class DragEvent extends MouseEvent {}
window.DragEvent = DragEvent;
window.ClipboardEvent = window.ClipboardEvent || class ClipboardEvent extends Event {};
window.ResizeObserver =
  window.ResizeObserver ||
  class ResizeObserver {
    observe() {}
    unobserve() {}
    disconnect() {}
  };
window.IntersectionObserver =
  window.IntersectionObserver ||
  class IntersectionObserver {
    observe() {}
    unobserve() {}
    disconnect() {}
  };
window.HTMLElement.prototype.scrollIntoView = function () {};
window.focus = () => {};
window.matchMedia =
  window.matchMedia ||
  (query => ({
    matches: false,
    media: query,
    onchange: null,
    addListener() {},
    removeListener() {},
    addEventListener() {},
    removeEventListener() {},
    dispatchEvent() {
      return false;
    }
  }));
// apputils' clipboard warns at import without it.
Object.defineProperty(window.navigator, 'clipboard', {
  value: { readText: async () => '', writeText: async () => undefined },
  configurable: true
});
// ReactWidget resolves its render promise on idle.
window.requestIdleCallback = window.requestIdleCallback || (callback => setTimeout(callback, 0));
window.cancelIdleCallback = window.cancelIdleCallback || (id => clearTimeout(id));

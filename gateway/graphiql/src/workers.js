// Where the Monaco editor (GraphiQL's editors) gets its web workers from:
// the worker bundles that build.mjs wrote next to this module, on the
// gateway's own origin, so the page's CSP can say `worker-src 'self'`.
// GATEHOUSE_WORKERS is filled in by build.mjs: { label: file name }.

/* global GATEHOUSE_WORKERS */
const files = GATEHOUSE_WORKERS;

globalThis.MonacoEnvironment = {
  getWorker(_moduleId, label) {
    const file = files[label] ?? files.editor;
    return new Worker(new URL(file, import.meta.url), { name: `monaco-${label}` });
  },
};

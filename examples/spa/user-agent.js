// user-agent.js: a short name for the device a session was started from
// ("Chrome on Linux", "Safari on iPhone", "curl"), read from its User-Agent
// header. A deliberately small reading, not a full parser: it names the
// common browsers and systems, and any other agent by its first product
// token. Show the raw string beside it (the app puts it in a tooltip).

// First match wins: Edge, Opera and Samsung Internet also say "Chrome", and
// almost every browser also says "Safari".
const BROWSERS = [
  ['Edge', /\b(?:Edg|EdgA|EdgiOS|Edge)\//],
  ['Opera', /\b(?:OPR|OPX|OPT|OPiOS)\//],
  ['Samsung Internet', /\bSamsungBrowser\//],
  ['Firefox', /\b(?:Firefox|FxiOS)\//],
  ['Chrome', /\b(?:Chrome|CriOS|HeadlessChrome|Chromium)\//],
  ['Safari', /\bVersion\/[\d.]+\b.*\bSafari\//],
  ['Internet Explorer', /\bTrident\/|\bMSIE /],
];

// iOS says "like Mac OS X", Android and ChromeOS say "Linux" or "X11".
const SYSTEMS = [
  ['iPhone', /\biPhone\b/],
  ['iPad', /\biPad\b/],
  ['iPod', /\biPod\b/],
  ['Android', /\bAndroid\b/],
  ['ChromeOS', /\bCrOS\b/],
  ['Windows', /\bWindows\b/],
  ['macOS', /\bMacintosh\b|\bMac OS X\b/],
  ['Linux', /\bLinux\b|\bX11\b/],
];

// Non-browser agents whose first token is not the name people know them by.
const TOOLS = {
  node: 'Node.js',
  undici: 'Node.js',
  'python-requests': 'Python requests',
  'python-httpx': 'Python httpx',
  'python-urllib': 'Python urllib',
  PostmanRuntime: 'Postman',
  'Go-http-client': 'Go',
  okhttp: 'OkHttp',
};

const find = (table, text) => table.find(([, pattern]) => pattern.test(text))?.[0];

/** "Chrome on Linux", "Safari on iPhone", "curl", … ("Unknown device" when empty). */
export function deviceName(userAgent) {
  const ua = String(userAgent ?? '').trim();
  if (!ua) return 'Unknown device';
  if (!/^Mozilla\//.test(ua)) {
    // curl/8.5.0, node, python-requests/2.32.3, Wget/1.21.4 …
    const token = ua.match(/^[^\s/;()]+/)?.[0];
    if (!token) return 'Unknown device';
    return TOOLS[token] ?? TOOLS[token.toLowerCase()] ?? token;
  }
  const browser = find(BROWSERS, ua);
  // Crawlers and the like: "Mozilla/5.0 (compatible; Googlebot/2.1; …)".
  const compatible = ua.match(/\(compatible; ([^\s/;)]+)/)?.[1];
  if (!browser && compatible) return compatible;
  const system = find(SYSTEMS, ua);
  return system ? `${browser ?? 'Web browser'} on ${system}` : (browser ?? 'Web browser');
}

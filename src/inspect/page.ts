/**
 * The inspector page's HTML and stylesheet, shipped as strings so that tsc carries them into dist (no copy
 * step, no build step). The HTML holds no data at all: everything shown is added by inspector.js through
 * textContent, so nothing a chat server sends can ever be parsed as markup.
 */

export const INSPECTOR_CSS = `
:root {
  --bg: #f6f7f9; --card: #fff; --text: #1d2330; --muted: #5d6677; --line: #dfe3ea; --code: #f1f3f6;
  --ok: #1a7f37; --ok-bg: #e3f4e8; --remove: #9a5b00; --remove-bg: #fff1d6; --fail: #c4261d; --fail-bg: #fde6e4;
  --accent: #1f5fbf;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #15181e; --card: #1e222a; --text: #e4e7ed; --muted: #9aa3b2; --line: #333946; --code: #262b35;
    --ok: #5cc77a; --ok-bg: #1d3526; --remove: #f0b44c; --remove-bg: #3a2e16; --fail: #ff7b72; --fail-bg: #3d1f1d;
    --accent: #7aa7ff;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0 auto; max-width: 64rem; padding: 1.25rem 1rem 3rem;
  background: var(--bg); color: var(--text);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
h1 { font-size: 1.5rem; margin: 0 0 .35rem; letter-spacing: -.01em; }
h1 .product { color: var(--muted); font-weight: 500; }
h2 { font-size: 1rem; margin: 0 0 .35rem; }
h3 { font-size: .8rem; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: .9rem 0 .3rem; }
p { margin: .3rem 0; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 13px; }
.lead { color: var(--muted); max-width: 46rem; }
.mode { display: inline-block; margin-top: .4rem; padding: .3rem .6rem; border-radius: 6px; background: var(--remove-bg); color: var(--text); font-size: .9rem; }
.mode b { color: var(--remove); }
.try { margin: 1rem 0; padding: .75rem .9rem; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
.try p { color: var(--muted); font-size: .9rem; }
pre { margin: 0; padding: .6rem .7rem; background: var(--code); border-radius: 6px; white-space: pre-wrap; overflow-wrap: anywhere; }
.filter { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; margin: 1rem 0 .5rem; }
.filter label { font-weight: 600; }
.filter input {
  flex: 1 1 12rem; max-width: 22rem; min-width: 0; padding: .45rem .6rem; font: inherit; color: inherit;
  background: var(--card); border: 1px solid var(--line); border-radius: 6px;
}
.filter button { padding: .45rem .9rem; font: inherit; color: #fff; background: var(--accent); border: 0; border-radius: 6px; cursor: pointer; }
.status { margin: .25rem 0 .75rem; color: var(--muted); font-size: .9rem; }
.status::before { content: ""; display: inline-block; width: .55rem; height: .55rem; margin-right: .4rem; border-radius: 50%; background: var(--muted); vertical-align: .05rem; }
.status.live::before { background: var(--ok); }
.status.reconnecting::before, .status.retrying::before { background: var(--remove); }
.empty { padding: 1.5rem 1rem; text-align: center; color: var(--muted); background: var(--card); border: 1px dashed var(--line); border-radius: 8px; }
.list { list-style: none; margin: 0; padding: 0; display: grid; gap: .5rem; }
.row { background: var(--card); border: 1px solid var(--line); border-left: 4px solid var(--muted); border-radius: 8px; overflow: hidden; }
.row.ok { border-left-color: var(--ok); }
.row.remove { border-left-color: var(--remove); }
.row.fail { border-left-color: var(--fail); }
.row.fresh { animation: fresh 1.5s ease-out; }
@keyframes fresh { from { background: var(--code); } }
summary { display: block; padding: .55rem .75rem; cursor: pointer; list-style: none; }
summary::-webkit-details-marker { display: none; }
summary:focus-visible { outline: 2px solid var(--accent); outline-offset: -2px; }
.head { display: flex; flex-wrap: wrap; align-items: baseline; gap: .25rem .6rem; }
.head::before { content: "▸"; color: var(--muted); width: .8rem; }
details[open] .head::before { content: "▾"; }
.badge { font-size: .75rem; font-weight: 700; letter-spacing: .03em; padding: .05rem .45rem; border-radius: 4px; }
.badge.ok { color: var(--ok); background: var(--ok-bg); }
.badge.remove { color: var(--remove); background: var(--remove-bg); }
.badge.fail { color: var(--fail); background: var(--fail-bg); }
.time { font-variant-numeric: tabular-nums; color: var(--muted); }
.server { font-weight: 600; overflow-wrap: anywhere; }
.chip { font-size: .8rem; padding: 0 .4rem; border: 1px solid var(--line); border-radius: 4px; color: var(--muted); overflow-wrap: anywhere; }
.chip.voip { color: var(--accent); border-color: var(--accent); }
.timing { margin-left: auto; color: var(--muted); font-size: .85rem; font-variant-numeric: tabular-nums; white-space: nowrap; }
.line { margin: .2rem 0 0 1.4rem; overflow-wrap: anywhere; }
.why { color: var(--fail); font-size: .9rem; }
.row.remove .why { color: var(--remove); }
.preview { color: var(--text); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.detail { padding: 0 .75rem .75rem 2.15rem; border-top: 1px solid var(--line); }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem .9rem; margin: .6rem 0 0; font-size: .9rem; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.note { color: var(--muted); font-style: italic; }
.attempt-list { margin: 0; padding-left: 1.2rem; font-size: .9rem; }
.attempt .verdict { font-weight: 600; margin-right: .3rem; }
.chip.receipt { color: var(--ok); border-color: var(--ok); }
@media (max-width: 36rem) {
  body { padding: .9rem .65rem 2rem; font-size: 14px; }
  h1 { font-size: 1.25rem; }
  .timing { margin-left: 0; }
  .line { margin-left: 0; }
  .detail { padding-left: .75rem; }
  .filter input { max-width: none; }
}
`;

export interface PageAssets {
  /** Cache-busting versions of the script and stylesheet URLs. */
  scriptVersion: string;
  styleVersion: string;
}

/** URLs are relative so the page also works behind a reverse proxy that mounts it under a prefix. */
export function inspectorPage(assets: PageAssets): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>Notification inspector · Push Proxy</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="inspect/inspector.css?v=${assets.styleVersion}">
<script src="inspect/inspector.js?v=${assets.scriptVersion}" defer></script>
</head>
<body>
<header>
  <h1>Notification inspector <span class="product">· Push Proxy</span></h1>
  <p class="lead">The notifications this proxy answered most recently, newest first: each attempt with the provider's
  answer, the device's receipt when it acknowledged one, and the request exactly as it went to APNs or FCM (device
  tokens shortened). The list updates live. It shows the last
  <span id="capacity">200</span> at most, kept in memory; nothing is stored.</p>
  <p id="mode" class="mode" hidden></p>
</header>
<section class="try" aria-labelledby="try-title">
  <h2 id="try-title">Try it</h2>
  <p>Point a Mattermost server's <em>Push Notification Server</em> setting at this proxy, or send a notification by hand:</p>
  <pre id="curl">curl -s http://localhost:8066/api/v1/send_push -d '{"platform":"apple_rn-v2","server_id":"demo","device_id":"abababababababababababababababababababababababababababababababab","type":"message","version":"v2","channel_name":"Town Square","message":"hello :wave:"}'</pre>
  <p>For scripts, the same list as JSON: <a id="api-link" href="api/v1/inspect"><code>GET /api/v1/inspect?server_id=…&amp;limit=…</code></a></p>
</section>
<form id="filter" class="filter" action="inspect" method="get" role="search">
  <label for="server-id">Server id</label>
  <input id="server-id" name="server_id" type="search" autocomplete="off" autocapitalize="off" spellcheck="false" placeholder="all servers">
  <button type="submit">Filter</button>
</form>
<p id="status" class="status" role="status" aria-live="polite">Connecting…</p>
<ol id="list" class="list" aria-label="Notifications, newest first"></ol>
<p id="empty" class="empty" hidden></p>
<noscript><p class="empty">The live list needs JavaScript. <a href="api/v1/inspect">/api/v1/inspect</a> gives the same as JSON.</p></noscript>
</body>
</html>
`;
}

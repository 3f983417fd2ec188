// Removes the build of test files that no longer exist (renamed or deleted), before the build and a test run:
// `node --test dist/test/*.test.js` would run them too, and an incremental build never deletes an output.
// Plain JavaScript, because it runs before the TypeScript build.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const built = path.join(__dirname, '..', 'dist', 'test');
for (const file of fs.existsSync(built) ? fs.readdirSync(built) : []) {
  const source = /^(.*)\.js(\.map)?$/.exec(file);
  if (source && !fs.existsSync(path.join(__dirname, `${source[1]}.ts`))) fs.rmSync(path.join(built, file));
}

/**
 * Directory layouts for the configuration search: root/tmp (TMPDIR), root/project/config (../config) and
 * root/project/app (the working directory), each in a directory of the test's own.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './unit-support';

export interface Layout {
  root: string;
  tmp: string;
  /** The working directory. */
  cwd: string;
  /** The working directory's parent: ../config lives here. */
  parent: string;
}

export function layout(): Layout {
  const root = tempDir();
  const tmp = path.join(root, 'tmp');
  const parent = path.join(root, 'project');
  const cwd = path.join(parent, 'app');
  mkdirSync(tmp);
  mkdirSync(cwd, { recursive: true });
  return { root, tmp, cwd, parent };
}

/** Writes `content` as JSON at `file` (a path under the layout), creating its folder. */
export function put(file: string, content: object): string {
  mkdirSync(path.dirname(file), { recursive: true });
  // Written as an operator's file is: a file in the temporary directory must not be writable by others.
  writeFileSync(file, JSON.stringify(content), { mode: 0o644 });
  return file;
}

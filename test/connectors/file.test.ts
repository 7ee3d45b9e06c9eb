import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { mkdir, mkdtemp, open as openFile, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import type { BoundaryType, ConnectorPlugin, Options, Row, WindowRef, WindowWriter } from 'sluice/sdk';
import { Catalog } from '../../services/catalog/domain/catalog.js';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { type LoadedPlugin, loadPlugins } from '../../services/host/loader.js';

// Paths under the tests' file root (SLUICE_FILE_ROOTS, the temp folder); nothing is written there.
const OUT = join(tmpdir(), 'out');
const X = join(tmpdir(), 'x');

interface Ctx {
  loaded: LoadedPlugin<ConnectorPlugin>;
  runner: HookRunner;
  catalog: Catalog;
  /** Temporary root; every test writes in its own folder below it. */
  root: string;
}

const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
  t.deepEqual(
    plugins.problems.filter((p) => p.pluginId === 'file' || p.path.includes(join('connectors', 'file'))),
    [],
    'the file plugin loads without problems',
  );
  const loaded = plugins.connectors.get('file');
  if (!loaded) throw new Error('the file connector did not load');
  const runner = new HookRunner({ timeoutMs: 10_000 });
  t.context = {
    loaded,
    runner,
    catalog: new Catalog(plugins, runner),
    root: await mkdtemp(join(tmpdir(), 'sluice-file-test-')),
  };
});

test.after.always(async (t) => {
  if (t.context.root) await rm(t.context.root, { recursive: true, force: true });
});

let dirCount = 0;
/** A folder of the test's own (not created: the writer creates it). */
const dirOf = (t: ExecutionContext<Ctx>) => join(t.context.root, `d${++dirCount}`);

function win(
  lower: string,
  upper: string,
  jobId: string,
  extra: { type?: BoundaryType; groupId?: string; streamId?: string } = {},
): WindowRef {
  return {
    groupId: extra.groupId ?? 'g1',
    streamId: extra.streamId ?? 's1',
    jobId,
    boundaries: { boundaryType: extra.type ?? 'TIME', lowerBound: lower, upperBound: upper },
  };
}

const open = (t: ExecutionContext<Ctx>, options: Options, window: WindowRef): Promise<WindowWriter> =>
  t.context.runner.call(t.context.loaded, 'openWriter', { options, window });

async function writeAll(
  t: ExecutionContext<Ctx>,
  options: Options,
  window: WindowRef,
  rows: readonly Row[],
  end: 'commit' | 'abort' = 'commit',
): Promise<void> {
  const writer = await open(t, options, window);
  for (let i = 0; i < rows.length; i += 3) await writer.write(rows.slice(i, i + 3));
  if (end === 'commit') await writer.commit();
  else await writer.abort(new Error('test abort'));
}

const read = (dir: string, name: string) => readFile(join(dir, name), 'utf8');
/** The directory's entries, without the ownership records beside the window files (`.<name>.sluice`). */
const list = async (dir: string) => (await readdir(dir)).filter((n) => !n.endsWith('.sluice')).sort();
const errorOf = (err: unknown) => err as { code: string; message: string; details: { field?: string } };

/** A strict RFC 4180 parser, independent of the writer, to check the CSV reads back to the values. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new Error('unterminated quoted field');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
          } else {
            i++;
            break;
          }
        } else field += text[i++];
      }
    }
    if (text.startsWith('\r\n', i)) {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i += 2;
    } else if (text[i] === ',') {
      record.push(field);
      field = '';
      i++;
    } else if (i < text.length) {
      if (text[i] === '"' || text[i] === '\r' || text[i] === '\n')
        throw new Error(`bare ${JSON.stringify(text[i])} in an unquoted field at ${i}`);
      field += text[i++];
    }
  }
  if (field !== '' || record.length > 0) throw new Error('the last record is not ended by CRLF');
  return records;
}

test('jsonl: one JSON object per line, exactly, in write order', async (t) => {
  const dir = dirOf(t);
  const rows: Row[] = [
    { id: 1, name: 'ünïcødé, "quoted"\nline', nested: { a: [1, 2], b: null }, nothing: null },
    { id: 2, big: 12345678901234567890n, bytes: Buffer.from('hi'), when: new Date(0), skipped: undefined },
    { id: 3 },
    { id: 4, emoji: '😀\u2028' },
  ];
  await writeAll(t, { path: dir }, win('1000', '2000', 'job-1'), rows);
  t.deepEqual(await list(dir), ['g1-s1-1000-2000.jsonl']);
  t.is(
    await read(dir, 'g1-s1-1000-2000.jsonl'),
    '{"id":1,"name":"ünïcødé, \\"quoted\\"\\nline","nested":{"a":[1,2],"b":null},"nothing":null}\n' +
      '{"id":2,"big":12345678901234567890,"bytes":"aGk=","when":"1970-01-01T00:00:00.000Z"}\n' +
      '{"id":3}\n' +
      '{"id":4,"emoji":"😀\u2028"}\n',
  );
});

test('csv: RFC 4180 quoting of hostile values, CRLF records, header from the first row', async (t) => {
  const dir = dirOf(t);
  const rows: Row[] = [
    { id: 1, text: 'plain', obj: { k: 'v,"w"' } },
    { id: 2, text: 'comma, inside', obj: [1, 'two'] },
    { id: 3, text: 'quote " inside', obj: null },
    { id: 4, text: 'line\nbreak' },
    { id: 5, text: 'crlf\r\nbreak' },
    { id: 6, text: '' },
    { id: 7, text: null },
    { id: 8, text: '"' },
    { id: 9, text: '=1+2', obj: true },
    { id: 10, text: ' padded ', obj: 2.5 },
  ];
  await writeAll(t, { path: dir, format: 'csv' }, win('1000', '2000', 'job-1'), rows);
  const text = await read(dir, 'g1-s1-1000-2000.csv');
  t.is(
    text,
    [
      'id,text,obj',
      '1,plain,"{""k"":""v,\\""w\\""""}"',
      '2,"comma, inside","[1,""two""]"',
      '3,"quote "" inside",',
      '4,"line\nbreak",',
      '5,"crlf\r\nbreak",',
      '6,"",',
      '7,,',
      '8,"""",',
      '9,=1+2,true',
      '10, padded ,2.5',
      '',
    ].join('\r\n'),
  );
  const parsed = parseCsv(text);
  t.deepEqual(parsed[0], ['id', 'text', 'obj']);
  t.deepEqual(
    parsed.slice(1).map((r) => r[1]),
    ['plain', 'comma, inside', 'quote " inside', 'line\nbreak', 'crlf\r\nbreak', '', '', '"', '=1+2', ' padded '],
    'every value reads back as written',
  );
  t.deepEqual(JSON.parse(parsed[1]![2]!), { k: 'v,"w"' }, 'an object value is its JSON text');
});

test('csv: the columns option fixes order, blanks missing keys and leaves out the others; csvHeader false drops the header', async (t) => {
  const dir = dirOf(t);
  const rows: Row[] = [{ id: 1, name: 'a', extra: 'not written' }, { name: 'b', id: 2 }, { id: 3 }];
  await writeAll(t, { path: dir, format: 'csv', columns: ['name', 'id'] }, win('0', '10', 'job-1'), rows);
  t.is(await read(dir, 'g1-s1-0-10.csv'), 'name,id\r\na,1\r\nb,2\r\n,3\r\n');
  await writeAll(t, { path: dir, format: 'csv', columns: ['id'], csvHeader: false }, win('10', '20', 'job-2'), rows);
  t.is(await read(dir, 'g1-s1-10-20.csv'), '1\r\n2\r\n3\r\n');
});

test('csv: without columns, a later row with a key the first row lacked fails the write, and abort leaves nothing', async (t) => {
  const dir = dirOf(t);
  const writer = await open(t, { path: dir, format: 'csv' }, win('0', '10', 'job-1'));
  await writer.write([{ id: 1, name: 'a' }]);
  const err = await t.throwsAsync(writer.write([{ id: 2, name: 'b', surprise: true }]));
  t.is((err as unknown as { code: string }).code, 'FAILED_PRECONDITION');
  t.regex(err!.message, /'surprise'.*columns option/);
  await writer.abort(err);
  t.deepEqual(await list(dir), []);
});

test('an empty window commits an empty file (a CSV with fixed columns holds just its header)', async (t) => {
  const dir = dirOf(t);
  await writeAll(t, { path: dir }, win('0', '10', 'job-1'), []);
  t.is(await read(dir, 'g1-s1-0-10.jsonl'), '');
  await writeAll(t, { path: dir, format: 'csv', columns: ['id', 'name'] }, win('0', '10', 'job-2'), []);
  t.is(await read(dir, 'g1-s1-0-10.csv'), 'id,name\r\n');
});

test('nothing is visible before commit: rows sit in a hidden per-job temporary file in the same directory', async (t) => {
  const dir = dirOf(t);
  const writer = await open(t, { path: dir }, win('1000', '2000', 'job-7'));
  await writer.write([{ id: 1 }, { id: 2 }]);
  const names = await list(dir);
  t.is(names.length, 1, 'only the hidden temporary file exists');
  t.regex(names[0]!, /^\.g1-s1-1000-2000\.jsonl\.job-7\.[0-9a-f]{8}\.tmp$/);
  await t.throwsAsync(stat(join(dir, 'g1-s1-1000-2000.jsonl')), { code: 'ENOENT' });
  await writer.commit();
  t.deepEqual(await list(dir), ['g1-s1-1000-2000.jsonl'], 'the temporary file became the window file');
  t.is(await read(dir, 'g1-s1-1000-2000.jsonl'), '{"id":1}\n{"id":2}\n');
  await writer.commit();
  t.deepEqual(await list(dir), ['g1-s1-1000-2000.jsonl'], 'a second commit changes nothing');
  const late = await t.throwsAsync(writer.write([{ id: 3 }]));
  t.is((late as unknown as { code: string }).code, 'FAILED_PRECONDITION', 'no write after commit');
});

test('abort leaves no file and no temporary file, whether or not rows were written; it may be called twice', async (t) => {
  const dir = dirOf(t);
  await writeAll(t, { path: dir }, win('0', '10', 'job-1'), [{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }], 'abort');
  t.deepEqual(await list(dir), []);
  const writer = await open(t, { path: dir, format: 'csv' }, win('10', '20', 'job-2'));
  await writer.abort(new Error('cancelled before any row'));
  await writer.abort(new Error('again'));
  t.deepEqual(await list(dir), []);
  const err = await t.throwsAsync(writer.commit());
  t.is((err as unknown as { code: string }).code, 'FAILED_PRECONDITION', 'no commit after abort');
  t.deepEqual(await list(dir), []);
});

test('abort after a commit keeps the committed file', async (t) => {
  const dir = dirOf(t);
  const writer = await open(t, { path: dir }, win('0', '10', 'job-1'));
  await writer.write([{ id: 1 }]);
  await writer.commit();
  await writer.abort(new Error('late'));
  t.is(await read(dir, 'g1-s1-0-10.jsonl'), '{"id":1}\n');
});

test('a re-run of a window replaces its file (not appended); the old file stays whole until the re-run commits', async (t) => {
  const dir = dirOf(t);
  const options = { path: dir };
  await writeAll(t, options, win('0', '10', 'job-1'), [{ id: 1 }, { id: 2 }, { id: 3 }]);
  const rerun = await open(t, options, win('0', '10', 'job-1-rerun'));
  await rerun.write([{ id: 2, v: 'new' }]);
  t.is(
    await read(dir, 'g1-s1-0-10.jsonl'),
    '{"id":1}\n{"id":2}\n{"id":3}\n',
    'the first run is intact while the re-run writes',
  );
  await rerun.commit();
  t.is(await read(dir, 'g1-s1-0-10.jsonl'), '{"id":2,"v":"new"}\n');
  // An aborted re-run leaves the committed output alone.
  await writeAll(t, options, win('0', '10', 'job-1-rerun-2'), [{ id: 9 }], 'abort');
  t.is(await read(dir, 'g1-s1-0-10.jsonl'), '{"id":2,"v":"new"}\n');
  t.deepEqual(await list(dir), ['g1-s1-0-10.jsonl']);
});

test('a file Sluice did not write is never replaced: the job fails naming options.path, the file untouched, nothing left', async (t) => {
  const dir = dirOf(t);
  await mkdir(dir, { recursive: true });
  const target = join(dir, 'g1-s1-0-10.jsonl');
  await writeFile(target, 'precious data\n');
  const err = errorOf(await t.throwsAsync(open(t, { path: dir }, win('0', '10', 'job-1'))));
  t.is(err.code, 'FAILED_PRECONDITION');
  t.is(err.details.field, 'options.path');
  t.true(err.message.includes(target) && err.message.includes('not written by Sluice'), err.message);
  t.is(await read(dir, 'g1-s1-0-10.jsonl'), 'precious data\n');
  t.deepEqual(await readdir(dir), ['g1-s1-0-10.jsonl'], 'no temporary file, no record');

  // A foreign file put in place of one Sluice wrote (a new file by the same name) is not Sluice's either.
  await writeAll(t, { path: dir }, win('10', '20', 'job-2'), [{ id: 1 }]);
  await rename(join(dir, 'g1-s1-0-10.jsonl'), join(dir, 'g1-s1-10-20.jsonl'));
  const swapped = errorOf(await t.throwsAsync(writeAll(t, { path: dir }, win('10', '20', 'job-3'), [{ id: 2 }])));
  t.is(swapped.code, 'FAILED_PRECONDITION');
  t.is(await read(dir, 'g1-s1-10-20.jsonl'), 'precious data\n');

  // A directory at the window's path is refused the same way.
  await mkdir(join(dir, 'g1-s1-20-30.jsonl'));
  const isDir = errorOf(await t.throwsAsync(open(t, { path: dir }, win('20', '30', 'job-4'))));
  t.is(isDir.code, 'FAILED_PRECONDITION');
  t.is(isDir.details.field, 'options.path');
});

test('a foreign file that appears while the window is written is kept; the commit fails and leaves no temporary file', async (t) => {
  const dir = dirOf(t);
  const writer = await open(t, { path: dir }, win('0', '10', 'job-1'));
  await writer.write([{ id: 1 }]);
  await writeFile(join(dir, 'g1-s1-0-10.jsonl'), 'arrived meanwhile\n');
  const err = errorOf(await t.throwsAsync(writer.commit()));
  t.is(err.code, 'FAILED_PRECONDITION');
  t.is(err.details.field, 'options.path');
  t.is(await read(dir, 'g1-s1-0-10.jsonl'), 'arrived meanwhile\n');
  t.deepEqual(await list(dir), ['g1-s1-0-10.jsonl']);
});

/** The prototype of node:fs/promises' FileHandle, whose datasync the writer calls while a large window is written. */
async function fileHandleProto(dir: string): Promise<{ datasync: () => Promise<void> }> {
  await mkdir(dir, { recursive: true });
  const handle = await openFile(join(dir, 'probe'), 'w');
  await handle.close();
  await rm(join(dir, 'probe'));
  return Object.getPrototypeOf(handle) as { datasync: () => Promise<void> };
}

/** 10,000 rows of about 1 KiB: past the 8 MiB at which the writer syncs what it wrote so far. */
const LARGE_ROWS = Array.from({ length: 10_000 }, (_, id) => ({ id, pad: 'p'.repeat(1000) }));

test.serial('a large window is synced while it is written, and commits whole', async (t) => {
  const dir = dirOf(t);
  const proto = await fileHandleProto(dir);
  const original = proto.datasync;
  let syncs = 0;
  proto.datasync = function (this: unknown) {
    syncs++;
    return original.call(this);
  };
  try {
    const writer = await open(t, { path: dir }, win('0', '10', 'job-1'));
    for (let i = 0; i < LARGE_ROWS.length; i += 500) await writer.write(LARGE_ROWS.slice(i, i + 500));
    await writer.commit();
  } finally {
    proto.datasync = original;
  }
  t.true(syncs >= 1, `datasync calls while writing: ${syncs}`);
  const lines = (await read(dir, 'g1-s1-0-10.jsonl')).split('\n');
  t.is(lines.pop(), '');
  t.deepEqual(
    lines.map((l) => (JSON.parse(l) as { id: number }).id),
    LARGE_ROWS.map((r) => r.id),
  );
});

test.serial('early syncs: at most two in flight at once, however many windows are written', async (t) => {
  const dirs = [dirOf(t), dirOf(t), dirOf(t), dirOf(t)];
  const proto = await fileHandleProto(dirs[0]!);
  const original = proto.datasync;
  let inFlight = 0;
  let most = 0;
  let calls = 0;
  // A slow disk: each sync takes 150 ms.
  proto.datasync = function (this: unknown) {
    calls++;
    most = Math.max(most, ++inFlight);
    return sleep(150).then(() => {
      inFlight--;
      return original.call(this);
    });
  };
  try {
    await Promise.all(
      dirs.map(async (dir, w) => {
        const writer = await open(t, { path: dir }, win('0', '10', `job-sync-${w}`));
        for (let i = 0; i < LARGE_ROWS.length; i += 500) await writer.write(LARGE_ROWS.slice(i, i + 500));
        await writer.commit();
      }),
    );
  } finally {
    proto.datasync = original;
  }
  t.true(calls >= 2, `early syncs: ${calls}`);
  t.is(most, 2, 'in flight at once, at most');
});

test.serial(
  'a failed sync while a window is written fails its commit: nothing is placed, the abort leaves nothing',
  async (t) => {
    const dir = dirOf(t);
    const proto = await fileHandleProto(dir);
    const original = proto.datasync;
    proto.datasync = () => Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    try {
      const writer = await open(t, { path: dir }, win('0', '10', 'job-1'));
      // Writes after the failed sync may go on (the sync is not awaited); the commit must not.
      for (let i = 0; i < LARGE_ROWS.length; i += 500) {
        try {
          await writer.write(LARGE_ROWS.slice(i, i + 500));
        } catch {
          break;
        }
      }
      const err = errorOf(await t.throwsAsync(writer.commit()));
      t.is(err.code, 'UNAVAILABLE');
      t.regex(err.message, /EIO/);
      t.false((await list(dir)).includes('g1-s1-0-10.jsonl'), 'the window file is not placed');
      // The runner aborts a writer whose commit failed: that removes the temporary file.
      await writer.abort(new Error('commit failed'));
    } finally {
      proto.datasync = original;
    }
    t.deepEqual(await list(dir), []);
  },
);

test('the ownership record beside a window file names the file Sluice wrote (device and inode)', async (t) => {
  const dir = dirOf(t);
  await writeAll(t, { path: dir }, win('0', '10', 'job-1'), [{ id: 1 }]);
  t.deepEqual((await readdir(dir)).sort(), ['.g1-s1-0-10.jsonl.sluice', 'g1-s1-0-10.jsonl']);
  const s = await stat(join(dir, 'g1-s1-0-10.jsonl'), { bigint: true });
  const record = JSON.parse(await read(dir, '.g1-s1-0-10.jsonl.sluice')) as { sluice: string; owned: string[] };
  t.is(record.sluice, 'file-sink');
  t.true(record.owned.includes(`${s.dev}:${s.ino}`));
});

test('concurrent writers of two windows, and two jobs of one window, do not clash', async (t) => {
  const dir = dirOf(t);
  const options = { path: dir };
  const [a, b] = await Promise.all([
    open(t, options, win('0', '10', 'job-a')),
    open(t, options, win('10', '20', 'job-b')),
  ]);
  for (let i = 0; i < 50; i++) await Promise.all([a.write([{ w: 'a', i }]), b.write([{ w: 'b', i }])]);
  await Promise.all([a.commit(), b.commit()]);
  const expect = (w: string) => Array.from({ length: 50 }, (_, i) => `{"w":"${w}","i":${i}}\n`).join('');
  t.is(await read(dir, 'g1-s1-0-10.jsonl'), expect('a'));
  t.is(await read(dir, 'g1-s1-10-20.jsonl'), expect('b'));

  // Two jobs of the same window (a retry racing a slow first attempt): separate temporary files; the
  // last commit wins whole, never a mix of both.
  const [first, second] = await Promise.all([
    open(t, options, win('20', '30', 'job-c1')),
    open(t, options, win('20', '30', 'job-c2')),
  ]);
  await Promise.all([first.write([{ job: 1 }]), second.write([{ job: 2 }])]);
  const names = await list(dir);
  t.is(names.length, 4);
  t.regex(names[0]!, /^\.g1-s1-20-30\.jsonl\.job-c1\.[0-9a-f]{8}\.tmp$/);
  t.regex(names[1]!, /^\.g1-s1-20-30\.jsonl\.job-c2\.[0-9a-f]{8}\.tmp$/);
  t.deepEqual(names.slice(2), ['g1-s1-0-10.jsonl', 'g1-s1-10-20.jsonl']);
  await first.commit();
  await second.commit();
  t.is(await read(dir, 'g1-s1-20-30.jsonl'), '{"job":2}\n');
  t.deepEqual(await list(dir), ['g1-s1-0-10.jsonl', 'g1-s1-10-20.jsonl', 'g1-s1-20-30.jsonl']);
});

test('file names: placeholders filled in, bounds and ids percent-encoded so no value escapes the directory', async (t) => {
  const dir = dirOf(t);
  const offset = win('0:10,1:12', '0:20,1:25', 'job-1', { type: 'OFFSET', groupId: '../team/a b', streamId: 'ünï' });
  await writeAll(t, { path: dir }, offset, [{ id: 1 }]);
  t.deepEqual(await list(dir), ['%2E.%2Fteam%2Fa%20b-%C3%BCn%C3%AF-0%3A10%2C1%3A12-0%3A20%2C1%3A25.jsonl']);

  await writeAll(t, { path: dir, format: 'csv', fileName: '{type}_{lower}_{upper}.{ext}' }, win('5', '9', 'job-2'), [
    { id: 1 },
  ]);
  t.true((await list(dir)).includes('time_5_9.csv'));
});

test('a re-run of a job while its cancelled run still writes: each has its own temporary file, the commit holds only its rows', async (t) => {
  const dir = dirOf(t);
  const options = { path: dir };
  const rows = (run: string, n: number) => Array.from({ length: n }, (_, i) => ({ run, i, pad: 'x'.repeat(100) }));
  const old = await open(t, options, win('0', '10', 'job-1'));
  await old.write(rows('old', 20_000));
  const rerun = await open(t, options, win('0', '10', 'job-1'));
  // The old run goes on writing (megabytes, so its stream waits for the disk) into its own file.
  await old.write(rows('old', 20_000));
  await rerun.write(rows('new', 2));
  await rerun.commit();
  await old.write(rows('old', 20_000));
  const expected = rows('new', 2)
    .map((r) => `${JSON.stringify(r)}\n`)
    .join('');
  t.is(await read(dir, 'g1-s1-0-10.jsonl'), expected, "exactly the re-run's rows");
  await old.abort(new Error('cancelled'));
  t.is(await read(dir, 'g1-s1-0-10.jsonl'), expected, "the old run's abort leaves the committed file alone");
  t.deepEqual(await list(dir), ['g1-s1-0-10.jsonl'], 'no temporary file is left');
});

test('opening a window deletes the temporary files an earlier run of the same job left, and only those', async (t) => {
  const dir = dirOf(t);
  const options = { path: dir };
  await mkdir(dir, { recursive: true });
  const crashed = '.g1-s1-0-10.jsonl.job-1.0123abcd.tmp';
  const otherJob = '.g1-s1-0-10.jsonl.job-2.0123abcd.tmp';
  const otherWindow = '.g1-s1-10-20.jsonl.job-1.0123abcd.tmp';
  for (const n of [crashed, otherJob, otherWindow]) await writeFile(join(dir, n), 'left\n');
  const writer = await open(t, options, win('0', '10', 'job-1'));
  const names = await list(dir);
  t.false(names.includes(crashed));
  t.true(names.includes(otherJob) && names.includes(otherWindow));
  await writer.abort(new Error('done'));
  t.deepEqual(await list(dir), [otherJob, otherWindow].sort());

  // A job id too long for the name: hashed, under 255 bytes, and still found by the job's next open.
  const longJob = 'j'.repeat(300);
  const stale = await open(t, options, win('20', '30', longJob));
  const [left] = (await list(dir)).filter((n) => !n.startsWith('.g1-s1-0-10'));
  t.true(Buffer.byteLength(left!) <= 255);
  const again = await open(t, options, win('20', '30', longJob));
  await again.write([{ id: 1 }]);
  await again.commit();
  await stale.abort(new Error('cancelled'));
  t.deepEqual(await list(dir), [otherJob, otherWindow, 'g1-s1-20-30.jsonl'].sort());
});

test('file names stay under 255 bytes and stable for very long bounds (hashed), so a re-run still replaces', async (t) => {
  const dir = dirOf(t);
  const lower = Array.from({ length: 300 }, (_, p) => `${p}:1000`).join(',');
  const upper = Array.from({ length: 300 }, (_, p) => `${p}:2000`).join(',');
  await writeAll(t, { path: dir }, win(lower, upper, 'job-1', { type: 'OFFSET' }), [{ id: 1 }]);
  await writeAll(t, { path: dir }, win(lower, upper, 'job-2', { type: 'OFFSET' }), [{ id: 2 }]);
  const names = await list(dir);
  t.is(names.length, 1, 'the re-run found the same name');
  t.true(Buffer.byteLength(names[0]!) <= 255);
  t.regex(names[0]!, /^g1-s1-h[0-9a-f]{20}-h[0-9a-f]{20}\.jsonl$/);
  t.is(await read(dir, names[0]!), '{"id":2}\n');
});

test('the directory is created, with its parents, when missing', async (t) => {
  const dir = join(dirOf(t), 'a', 'b', 'c');
  await writeAll(t, { path: dir }, win('0', '10', 'job-1'), [{ id: 1 }]);
  t.deepEqual(await list(dir), ['g1-s1-0-10.jsonl']);
});

test.serial('a large write streams with backpressure: 200k rows (~100 MB) with bounded memory', async (t) => {
  const dir = dirOf(t);
  const writer = await open(t, { path: dir }, win('0', '200000', 'job-big'));
  const padding = 'x'.repeat(480);
  const before = process.memoryUsage().heapUsed;
  let peak = 0;
  for (let b = 0; b < 200; b++) {
    const batch = Array.from({ length: 1000 }, (_, i) => ({ id: b * 1000 + i, padding }));
    await writer.write(batch);
    peak = Math.max(peak, process.memoryUsage().heapUsed - before);
  }
  await writer.commit();
  const size = (await stat(join(dir, 'g1-s1-0-200000.jsonl'))).size;
  let expected = 0;
  for (let id = 0; id < 200_000; id++) expected += `{"id":${id},"padding":"${padding}"}\n`.length;
  t.is(size, expected, 'every row was written');
  // Without backpressure the stream would buffer most of the ~100 MB as strings on the heap.
  t.true(
    peak < 64 * 1024 * 1024,
    `heap grew by ${(peak / 1048576).toFixed(1)} MiB while writing ${(size / 1048576).toFixed(0)} MiB`,
  );
  t.deepEqual(await list(dir), ['g1-s1-0-200000.jsonl']);
});

test('bad options are field errors (schema first, then the cross-field checks)', async (t) => {
  const check = (options: Options) => t.context.catalog.validateOptions('file', 'sink', options);
  const paths = async (options: Options) => (await check(options)).map((e) => e.path);
  t.deepEqual(await check({ path: OUT }), []);
  t.deepEqual(
    await check({
      path: OUT,
      format: 'csv',
      columns: ['id', 'name'],
      csvHeader: false,
      fileName: '{streamId}.{lower}.{upper}.csv',
    }),
    [],
  );
  t.deepEqual(await paths({}), ['options.path']);
  t.deepEqual(await paths({ path: X, format: 'xml' }), ['options.format']);
  t.deepEqual(await paths({ path: X, extra: 1 }), ['options.extra']);
  t.deepEqual(await paths({ path: X, csvHeader: 'yes' }), ['options.csvHeader']);
  t.deepEqual(await paths({ path: 'relative/dir' }), ['options.path']);
  t.deepEqual(await paths({ path: X, fileName: '{groupId}.{ext}' }), ['options.fileName']);
  t.deepEqual(await paths({ path: X, fileName: '{lower}-{upper}-{bogus}' }), ['options.fileName']);
  t.deepEqual(await paths({ path: X, fileName: '{lower}-{upper' }), ['options.fileName', 'options.fileName']);
  t.deepEqual(await paths({ path: X, fileName: 'sub/{lower}-{upper}' }), ['options.fileName']);
  t.deepEqual(await paths({ path: X, fileName: '.{lower}-{upper}' }), ['options.fileName']);
  t.deepEqual(await paths({ path: X, columns: ['id'] }), ['options.columns']);
  t.deepEqual(await paths({ path: X, format: 'csv', columns: ['id', 'id'] }), ['options.columns']);
  t.deepEqual(await paths({ path: X, format: 'csv', columns: [] }), ['options.columns']);
  t.deepEqual(await paths({ path: X, format: 'csv', columns: [''] }), ['options.columns[0]']);
  const [unknown] = await check({ path: X, fileName: '{lower}-{upper}-{bogus}' });
  t.regex(unknown!.expected, /unknown: \{bogus\}/);
  const [dot] = await check({ path: 'relative/dir' });
  t.regex(dot!.message, /absolute/);
});

test('openWriter refuses bad options with INVALID_ARGUMENT naming every field, and creates nothing', async (t) => {
  const dir = dirOf(t);
  const err = await t.throwsAsync(
    open(t, { path: dir, format: 'csv', columns: ['a', 'a'], fileName: 'x.csv' }, win('0', '10', 'job-1')),
  );
  const e = err as unknown as {
    code: string;
    details: { pluginId: string; hook: string; fieldErrors: { path: string }[] };
  };
  t.is(e.code, 'INVALID_ARGUMENT');
  t.is(e.details.pluginId, 'file');
  t.is(e.details.hook, 'openWriter');
  t.deepEqual(
    e.details.fieldErrors.map((f) => f.path),
    ['options.fileName', 'options.columns'],
  );
  await t.throwsAsync(stat(dir), { code: 'ENOENT' });
});

test('flinkTableOptions: a Flink filesystem table in the directory, json or csv', async (t) => {
  const call = (options: Options) =>
    t.context.runner.call(t.context.loaded, 'flinkTableOptions', { role: 'sink', options });
  t.deepEqual(await call({ path: OUT }), { connector: 'filesystem', path: OUT, format: 'json' });
  t.deepEqual(await call({ path: OUT, format: 'csv', columns: ['id'] }), {
    connector: 'filesystem',
    path: OUT,
    format: 'csv',
  });
});

test('the connector is a sink only, every option documented', (t) => {
  const p = t.context.loaded.plugin;
  t.deepEqual(p.roles, ['sink']);
  t.is(p.sourceOptions, undefined);
  for (const [name, prop] of Object.entries(p.sinkOptions?.properties ?? {}))
    t.true((prop.description ?? '').length > 20, name);
});

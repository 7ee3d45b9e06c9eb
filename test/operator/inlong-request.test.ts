import test from 'ava';
import { decodeSubmit, normalizePath, timeBound } from '../../services/operator/http/inlong-request.js';

const fieldOf = (err: unknown) => (err as { details?: { field?: string } }).details?.field;

test('TIME bounds below 1e11 are seconds, at or above are milliseconds, as integers, decimals or strings', (t) => {
  t.is(timeBound('lowerBoundary', '1828067629'), '1828067629000');
  t.is(timeBound('lowerBoundary', 1828067580.0), '1828067580000');
  t.is(timeBound('lowerBoundary', 1731072908.243), '1731072908243');
  t.is(timeBound('lowerBoundary', '1731072908.5'), '1731072908500');
  t.is(timeBound('lowerBoundary', 1828067629000), '1828067629000');
  t.is(timeBound('lowerBoundary', '99999999999'), '99999999999000', 'just below 1e11: seconds');
  t.is(timeBound('lowerBoundary', '100000000000'), '100000000000', '1e11: milliseconds');
  t.is(timeBound('lowerBoundary', '1828067629000.0'), '1828067629000');
});

test('TIME bounds that are not whole ms are refused, naming the field', (t) => {
  for (const bad of ['1731072908.2431', '1828067629000.5', '-5', 'yesterday', '', null, true, Number.NaN, '1e12']) {
    const err = t.throws(() => timeBound('upperBoundary', bad), undefined, String(bad));
    t.is(fieldOf(err), 'upperBoundary', String(bad));
  }
});

test('InLong spellings: boundaryType in any case, extra fields ignored; OFFSET bounds kept as given', (t) => {
  const d = decodeSubmit({
    groupId: 'g',
    boundaryType: 'time',
    lowerBoundary: '1828067629',
    upperBoundary: 1828071229,
    inlongStreamId: 'ignored',
  });
  t.deepEqual(d, {
    groupId: 'g',
    boundaryType: 'TIME',
    lowerBound: '1828067629000',
    upperBound: '1828071229000',
    rerun: false,
  });
  const o = decodeSubmit({ groupId: 'g', boundaryType: 'Offset', lowerBoundary: '0:10, 1:12', upperBoundary: 7 });
  t.is(o.lowerBound, '0:10, 1:12');
  t.is(o.upperBound, '7');
});

test("InLong's path: doubled and trailing slashes are tolerated", (t) => {
  t.is(normalizePath('//inlong/manager/api/group/submitOfflineJob'), '/inlong/manager/api/group/submitOfflineJob');
  t.is(normalizePath('/inlong/manager/api/group/submitOfflineJob/'), '/inlong/manager/api/group/submitOfflineJob');
  t.is(normalizePath('/'), '/');
});

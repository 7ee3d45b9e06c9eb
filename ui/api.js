// Calls Sluice's JSON API (/sluice/v1, docs/http-api.md) with the bearer token kept for this tab.
const KEY = 'sluice.token';

export const token = {
  get: () => sessionStorage.getItem(KEY) ?? '',
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

/** An API failure: HTTP status, Sluice's error code, message and field errors. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.errMsg ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.code ?? '';
    this.fieldErrors = body?.fieldErrors ?? [];
  }
}

/** GET (no body) or POST (JSON body) one path; resolves with the RPC's answer as proto3 JSON. */
export async function api(path, body) {
  const res = await fetch(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${token.get()}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const answer = await res.json().catch(() => undefined);
  if (!res.ok) throw new ApiError(res.status, answer);
  return answer;
}

/** Every page of a list RPC (`field` names the list in the answer), up to `max` items. */
export async function all(path, params, field, max = 5000) {
  const items = [];
  let pageToken = '';
  do {
    const q = new URLSearchParams({ ...params, pageSize: '500', ...(pageToken ? { pageToken } : {}) });
    const page = await api(`${path}?${q}`);
    items.push(...(page[field] ?? []));
    pageToken = page.nextPageToken ?? '';
  } while (pageToken && items.length < max);
  return items;
}

// The session: a JWT pair kept in sessionStorage (this tab only), refreshed a
// minute before the access token expires, and a fetch wrapper that uses it.

const STORE_KEY = "bamchat.tokens";
const REFRESH_MARGIN_S = 60; // refresh this long before expiry (default lifetime 15 min)
const MIN_REFRESH_DELAY_S = 5; // short test lifetimes still get a breathing space

let tokens = null; // {access, refresh}
let refreshing = null; // the one refresh in flight
let timer = null;
const listeners = new Set();

function expiry(jwt) {
  const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(part)).exp;
}

function save(pair) {
  tokens = pair ? { access: pair.access, refresh: pair.refresh } : null;
  if (tokens) sessionStorage.setItem(STORE_KEY, JSON.stringify(tokens));
  else sessionStorage.removeItem(STORE_KEY);
  clearTimeout(timer);
  if (tokens) {
    const left = expiry(tokens.access) - Date.now() / 1000;
    const delay = Math.max(MIN_REFRESH_DELAY_S, left - REFRESH_MARGIN_S);
    timer = setTimeout(() => refresh().catch(() => {}), delay * 1000);
  }
  for (const listener of listeners) listener(tokens);
}

/** Call ``listener(tokens)`` whenever the pair changes (null after logout). */
export function onTokens(listener) {
  listeners.add(listener);
}

/** The current access token, or null when logged out. */
export function accessToken() {
  return tokens ? tokens.access : null;
}

/** Load the pair this tab kept; true when there is one. */
export function restore() {
  const kept = sessionStorage.getItem(STORE_KEY);
  if (!kept) return false;
  try {
    const pair = JSON.parse(kept);
    if (expiry(pair.refresh) < Date.now() / 1000) throw new Error("expired");
    save(pair);
    return true;
  } catch {
    sessionStorage.removeItem(STORE_KEY);
    return false;
  }
}

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && (body.detail || (body.error && body.error.message));
    super(detail || `request failed (${status})`);
    this.status = status;
    this.body = body;
  }
}

async function request(method, path, body, token) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Exchange username and password for a pair. */
export async function login(username, password) {
  save(await request("POST", "/auth/token", { username, password }));
}

/** A new pair from the refresh token; a refused one logs out. */
export function refresh() {
  if (!tokens) return Promise.reject(new ApiError(401, null));
  if (!refreshing) {
    refreshing = request("POST", "/auth/token/refresh", { refresh: tokens.refresh })
      .then((pair) => save({ access: pair.access, refresh: pair.refresh || tokens.refresh }))
      .catch((error) => {
        if (error.status === 401) save(null);
        throw error;
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

/** End this session on the server (the refresh token is revoked) and here. */
export async function logout() {
  const kept = tokens;
  save(null);
  if (kept) await request("POST", "/auth/logout", { refresh: kept.refresh }).catch(() => {});
}

/** A JSON request with the access token; one refresh and retry on a 401. */
export async function api(method, path, body) {
  try {
    return await request(method, path, body, accessToken());
  } catch (error) {
    if (error.status !== 401 || !tokens) throw error;
    await refresh();
    return request(method, path, body, accessToken());
  }
}

/** Upload ``file`` as multipart field ``file``, reporting progress in 0..1. */
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Authorization", `Bearer ${accessToken()}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, null)));
    const form = new FormData();
    form.append("file", file);
    xhr.send(form);
  });
}

/**
 * Requests to the aiinfra server extension.
 *
 * Pure code (no JupyterLab runtime imports) so jest can test it: the caller
 * passes a `fetcher`, which in the lab is ServerConnection.makeRequest with
 * the server settings (base URL, token, XSRF cookie handled there).
 */

import { TranslationBundle, UNTRANSLATED } from './i18n';

export type Fetcher = (url: string, init: RequestInit) => Promise<Response>;

export interface IRequester {
  baseUrl: string;
  fetcher: Fetcher;
  /** The words of this side's own errors (the server's messages come as they are). */
  trans?: TranslationBundle;
}

/** What went wrong, in words for the panel. */
export class APIError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly field: string | null = null,
    readonly extensionMissing = false
  ) {
    super(message);
    this.name = 'APIError';
  }
}

/** What the panel says when the server extension's routes are missing. */
export function extensionMissing(trans: TranslationBundle = UNTRANSLATED): string {
  return trans.__(
    'The aiinfra server extension is not running in this Jupyter server. Install aiinfra in the environment that runs Jupyter and restart it (or run: jupyter server extension enable aiinfra_magics).'
  );
}

export const EXTENSION_MISSING = extensionMissing();

/** Join URL parts with single slashes, keeping a leading scheme or slash. */
export function joinUrl(...parts: string[]): string {
  const kept = parts.filter(p => p !== '');
  return kept
    .map((part, i) => {
      let p = part;
      if (i > 0) {
        p = p.replace(/^\/+/, '');
      }
      if (i < kept.length - 1) {
        p = p.replace(/\/+$/, '');
      }
      return p;
    })
    .join('/');
}

/** The URL of an aiinfra route below the server's base URL. */
export function apiUrl(baseUrl: string, ...path: string[]): string {
  return joinUrl(baseUrl, 'aiinfra', 'api', ...path.map(encodeURIComponent));
}

/** The dashboard proxy URL of a registered cluster. */
export function dashboardUrl(baseUrl: string, name: string, page = 'status'): string {
  return joinUrl(baseUrl, 'aiinfra', 'dashboard', encodeURIComponent(name), page);
}

/**
 * Call an aiinfra route; resolves to the JSON body or rejects with APIError.
 *
 * A 404 whose body is not aiinfra JSON means the route itself is missing: the
 * server extension is not installed or not enabled.
 */
export async function requestAPI<T>(
  requester: IRequester,
  path: string[],
  method = 'GET',
  body?: unknown
): Promise<T> {
  const trans = requester.trans ?? UNTRANSLATED;
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  let response: Response;
  try {
    response = await requester.fetcher(apiUrl(requester.baseUrl, ...path), init);
  } catch (reason) {
    throw new APIError(trans.__('Jupyter server did not answer: %1', String(reason)), 0);
  }
  const text = await response.text();
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.ok) {
    return data as T;
  }
  const fromAiinfra = data !== null && typeof data === 'object' && 'field' in data;
  if (response.status === 404 && !fromAiinfra) {
    throw new APIError(extensionMissing(trans), 404, null, true);
  }
  const message =
    (data && typeof data.message === 'string' && data.message) ||
    trans.__('%1 %2 failed: HTTP %3', method, path.join('/'), response.status);
  throw new APIError(message, response.status, fromAiinfra ? data.field : null);
}

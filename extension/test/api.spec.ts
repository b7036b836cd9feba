import { APIError, apiUrl, dashboardUrl, EXTENSION_MISSING, IRequester, joinUrl, requestAPI } from '../src/api';

type Call = { url: string; init: RequestInit };

function requester(status: number, body: string, calls: Call[] = []): IRequester {
  return {
    baseUrl: '/user/a@b/',
    fetcher: async (url, init) => {
      calls.push({ url, init });
      return new Response(body, { status });
    }
  };
}

describe('urls', () => {
  it('joins parts with single slashes under any base url', () => {
    expect(joinUrl('/', 'aiinfra', 'api')).toBe('/aiinfra/api');
    expect(joinUrl('/hub/user/x/', '/aiinfra/', 'api')).toBe('/hub/user/x/aiinfra/api');
    expect(joinUrl('http://h:1/base/', 'a')).toBe('http://h:1/base/a');
  });

  it('encodes names so they stay one path segment', () => {
    expect(apiUrl('/', 'clusters', 'a/b c')).toBe('/aiinfra/api/clusters/a%2Fb%20c');
    expect(dashboardUrl('/base/', 'my-cluster')).toBe('/base/aiinfra/dashboard/my-cluster/status');
  });
});

describe('requestAPI', () => {
  it('returns the JSON body and sends JSON bodies', async () => {
    const calls: Call[] = [];
    const data = await requestAPI<any>(requester(201, '{"name": "c1"}', calls), ['clusters'], 'POST', {
      workers: 2
    });
    expect(data).toEqual({ name: 'c1' });
    expect(calls[0].url).toBe('/user/a@b/aiinfra/api/clusters');
    expect(calls[0].init.method).toBe('POST');
    expect(JSON.parse(String(calls[0].init.body))).toEqual({ workers: 2 });
  });

  it('turns a 400 into an error that names the field', async () => {
    const body = JSON.stringify({ message: 'workers: got 0; allowed: an integer >= 1', field: 'workers' });
    const error: any = await requestAPI(requester(400, body), ['clusters'], 'POST', { workers: 0 }).catch((e: APIError) => e);
    expect(error).toBeInstanceOf(APIError);
    expect(error.status).toBe(400);
    expect(error.field).toBe('workers');
    expect(error.message).toMatch(/^workers: got 0/);
    expect(error.extensionMissing).toBe(false);
  });

  it('tells an unknown name (aiinfra 404) from a missing server extension', async () => {
    const known = JSON.stringify({ message: "name: no cluster named 'x'", field: 'name' });
    const unknownName: any = await requestAPI(requester(404, known), ['clusters', 'x']).catch((e: APIError) => e);
    expect(unknownName.extensionMissing).toBe(false);
    expect(unknownName.message).toContain("no cluster named 'x'");

    const missing: any = await requestAPI(requester(404, '<html>404 Not Found</html>'), ['clusters']).catch((e: APIError) => e);
    expect(missing.extensionMissing).toBe(true);
    expect(missing.message).toBe(EXTENSION_MISSING);
  });

  it('reports a server that does not answer', async () => {
    const down: IRequester = {
      baseUrl: '/',
      fetcher: async () => {
        throw new TypeError('Failed to fetch');
      }
    };
    const error: any = await requestAPI(down, ['devices']).catch((e: APIError) => e);
    expect(error.status).toBe(0);
    expect(error.message).toContain('did not answer');
  });

  it('falls back to the status when the error body is not JSON', async () => {
    const error: any = await requestAPI(requester(502, 'bad gateway'), ['clusters']).catch((e: APIError) => e);
    expect(error.message).toBe('GET clusters failed: HTTP 502');
  });
});

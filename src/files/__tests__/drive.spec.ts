import { Contents, ServerConnection } from '@jupyterlab/services';

import { FilesError, HostDrive, IRefused } from '../drive';
import {
  containerPath,
  driveName,
  driveOfPath,
  filesEndpoint,
  parseDriveName
} from '../names';

const JOB = 'gpt2-pretrain-ddp-2026-12-07-1204';

interface ICall {
  method: string;
  url: URL;
  body: unknown;
}

/**
 * A drive whose server is `answer`; every request is recorded.
 */
function driveAnswering(
  answer: (call: ICall) => { status: number; body?: unknown },
  transport: 'ssm' | 'ssh' | null = 'ssm'
): { drive: HostDrive; calls: ICall[] } {
  const calls: ICall[] = [];
  const fetch = jest.fn(async (input: RequestInfo, init?: RequestInit) => {
    const request = new Request(input, init);
    const text = await request.text();
    const call = {
      method: request.method,
      url: new URL(request.url),
      body: text ? JSON.parse(text) : undefined
    };
    calls.push(call);
    const { status, body } = answer(call);
    return new Response(body === undefined ? null : JSON.stringify(body), {
      status,
      headers: { 'Content-Type': 'application/json' }
    });
  });
  const serverSettings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/lab-base/',
    fetch: fetch as unknown as typeof window.fetch
  });
  const drive = new HostDrive({
    job: JOB,
    host: 'algo-1',
    transport,
    serverSettings
  });
  return { drive, calls };
}

function fileModel(path: string, extra: Record<string, unknown> = {}) {
  return {
    name: path.split('/').pop(),
    path,
    type: 'file',
    format: null,
    content: null,
    created: '2026-12-07T12:00:00Z',
    last_modified: '2026-12-07T12:00:00Z',
    size: 10,
    writable: true,
    mimetype: null,
    ...extra
  };
}

describe('drive names', () => {
  it('keep job and host readable and give them back', () => {
    const name = driveName(JOB, 'algo-1');
    expect(name).toBe(`sm-debug.${JOB}.algo-1`);
    expect(parseDriveName(name)).toEqual({ job: JOB, host: 'algo-1' });
  });

  it('encode what JupyterLab would split on, and the separator', () => {
    const name = driveName('a.b:c/d', 'h ö');
    expect(name).not.toMatch(/[:/ ]/);
    expect(name.split('.')).toHaveLength(3);
    expect(parseDriveName(name)).toEqual({ job: 'a.b:c/d', host: 'h ö' });
  });

  it('are not read from other names', () => {
    for (const other of [
      '',
      'RTC',
      'sm-debug',
      'sm-debug.job',
      'sm-debug.job.host.x',
      'other.job.host',
      'sm-debug.%ZZ.algo-1',
      // Not the one encoding of its pair: two names would share a drive.
      'sm-debug.%6Aob.algo-1'
    ]) {
      expect(parseDriveName(other)).toBeNull();
    }
  });

  it('are found in global paths as JupyterLab reads them', () => {
    expect(driveOfPath(`sm-debug.${JOB}.algo-1:opt/ml/code/train.py`)).toBe(
      `sm-debug.${JOB}.algo-1`
    );
    expect(driveOfPath('opt/ml/code/a:b.py')).toBe('');
    expect(driveOfPath('notebook.ipynb')).toBe('');
  });
});

describe('files URLs', () => {
  const ref = { job: JOB, host: 'algo-1' };

  it('encode each segment on its own', () => {
    expect(filesEndpoint(ref, 'opt/ml/a b/c#d?e%f.txt')).toBe(
      `jobs/${JOB}/hosts/algo-1/files/opt/ml/a%20b/c%23d%3Fe%25f.txt`
    );
    // A byte of an invalid UTF-8 name travels as its U+F7xx character.
    expect(filesEndpoint(ref, 'tmp/\uf7ff.bin')).toBe(
      `jobs/${JOB}/hosts/algo-1/files/tmp/%EF%9F%BF.bin`
    );
  });

  it('give the root as an empty path and drop empty and "." segments', () => {
    expect(filesEndpoint(ref, '')).toBe(`jobs/${JOB}/hosts/algo-1/files/`);
    expect(filesEndpoint(ref, '/opt//./ml/')).toBe(
      `jobs/${JOB}/hosts/algo-1/files/opt/ml`
    );
  });

  it('refuse ".." instead of leaving the path', () => {
    expect(() => filesEndpoint(ref, 'opt/../etc/passwd')).toThrow(/\.\./);
  });

  it('say the path in the container', () => {
    expect(containerPath('opt/ml/code')).toBe('/opt/ml/code');
    expect(containerPath('')).toBe('/');
  });
});

describe('HostDrive', () => {
  it('lists a directory with paths of its own, dropping names that could leave it', async () => {
    const { drive, calls } = driveAnswering(() => ({
      status: 200,
      body: {
        ...fileModel('opt/ml'),
        type: 'directory',
        format: 'json',
        content: [
          fileModel('opt/ml/code', { type: 'directory' }),
          fileModel('somewhere/else/x.txt', { name: 'x.txt' }),
          fileModel('', { name: '..' }),
          fileModel('', { name: 'a/b' }),
          fileModel('', { name: '' }),
          fileModel('', { name: 'line\nbreak' })
        ]
      }
    }));
    const model = await drive.get('opt/ml', { content: true });
    expect(calls[0].method).toBe('GET');
    expect(calls[0].url.pathname).toBe(
      `/lab-base/sm-debug/jobs/${JOB}/hosts/algo-1/files/opt/ml`
    );
    expect(calls[0].url.searchParams.get('transport')).toBe('ssm');
    expect(calls[0].url.searchParams.get('content')).toBe('1');
    expect(model.type).toBe('directory');
    expect(model.path).toBe('opt/ml');
    const items = model.content as Contents.IModel[];
    expect(items.map(item => [item.name, item.path, item.type])).toEqual([
      ['code', 'opt/ml/code', 'directory'],
      // The path is the drive's, never the server's.
      ['x.txt', 'opt/ml/x.txt', 'file'],
      ['line\nbreak', 'opt/ml/line\nbreak', 'file']
    ]);
  });

  it('says when the server cut a listing', async () => {
    const { drive } = driveAnswering(() => ({
      status: 200,
      body: {
        ...fileModel('usr/lib'),
        type: 'directory',
        format: 'json',
        content: [fileModel('usr/lib/a')],
        truncated: true
      }
    }));
    const cut: string[] = [];
    drive.truncated.connect((_, path) => cut.push(path));
    await drive.get('usr/lib', { content: true });
    expect(cut).toEqual(['usr/lib']);
  });

  it('asks for text as the editor does and reports a file that is not text', async () => {
    const { drive, calls } = driveAnswering(() => ({
      status: 400,
      body: {
        error: {
          code: 'not_text',
          message: '/opt/ml/model.pt is not UTF-8 text.',
          hint: 'Download it.'
        }
      }
    }));
    const refused: IRefused[] = [];
    drive.refused.connect((_, args) => refused.push(args));
    const load = drive.get('opt/ml/model.pt', {
      type: 'file',
      format: 'text',
      content: true
    });
    await expect(load).rejects.toBeInstanceOf(FilesError);
    await load.catch((error: FilesError) => {
      expect(error.code).toBe('not_text');
      expect(error.response.status).toBe(400);
      expect(error.message).toBe(
        '/opt/ml/model.pt is not UTF-8 text. Download it.'
      );
    });
    expect(calls[0].url.searchParams.get('format')).toBe('text');
    expect(refused.map(r => [r.path, r.reason])).toEqual([
      ['opt/ml/model.pt', 'binary']
    ]);
  });

  it('reports a file over the size limit', async () => {
    const { drive } = driveAnswering(() => ({
      status: 413,
      body: { error: { code: 'file_too_large', message: 'Over 16 MiB.' } }
    }));
    const refused: IRefused[] = [];
    drive.refused.connect((_, args) => refused.push(args));
    await expect(
      drive.get('opt/ml/big.log', { format: 'text', content: true })
    ).rejects.toThrow('Over 16 MiB.');
    expect(refused.map(r => r.reason)).toEqual(['too_large']);
  });

  it('never gives base64 where text was asked for', async () => {
    const { drive } = driveAnswering(() => ({
      status: 200,
      body: fileModel('bin/x', { format: 'base64', content: 'AAEC' })
    }));
    await expect(
      drive.get('bin/x', { format: 'text', content: true })
    ).rejects.toMatchObject({ code: 'binary_file' });
  });

  it('gives text as base64 to a viewer that asks for base64, with a MIME type of its own', async () => {
    const { drive } = driveAnswering(() => ({
      status: 200,
      body: fileModel('img/a.svg', {
        format: 'text',
        content: '<svg>é</svg>',
        mimetype: 'text/html'
      })
    }));
    const model = await drive.get('img/a.svg', {
      format: 'base64',
      content: true
    });
    expect(model.format).toBe('base64');
    expect(atob(model.content)).toBe('<svg>\xc3\xa9</svg>');
    expect(model.mimetype).toBe('image/svg+xml');
  });

  it('saves through PUT, chunks and all, and says so once the upload is whole', async () => {
    const { drive, calls } = driveAnswering(call => ({
      status: 200,
      body: fileModel(call.url.pathname.split('/files/')[1])
    }));
    const changes: Contents.IChangedArgs[] = [];
    drive.fileChanged.connect((_, args) => changes.push(args));
    await drive.save('opt/ml/code/train.py', {
      type: 'file',
      format: 'text',
      content: 'print(1)\n'
    });
    await drive.save('tmp/up.bin', {
      type: 'file',
      format: 'base64',
      content: 'AAAA',
      chunk: 1,
      name: 'up.bin'
    });
    await drive.save('tmp/up.bin', {
      type: 'file',
      format: 'base64',
      content: 'BBBB',
      chunk: -1
    });
    expect(calls.map(c => [c.method, c.body])).toEqual([
      ['PUT', { type: 'file', format: 'text', content: 'print(1)\n' }],
      ['PUT', { type: 'file', format: 'base64', content: 'AAAA', chunk: 1 }],
      ['PUT', { type: 'file', format: 'base64', content: 'BBBB', chunk: -1 }]
    ]);
    expect(changes.map(c => [c.type, c.newValue?.path])).toEqual([
      ['save', 'opt/ml/code/train.py'],
      ['save', 'tmp/up.bin']
    ]);
  });

  it('renames with PATCH, deletes with DELETE, makes and copies with POST', async () => {
    const { drive, calls } = driveAnswering(call => {
      if (call.method === 'DELETE') {
        return { status: 204 };
      }
      if (call.method === 'POST') {
        const body = call.body as Record<string, string>;
        const name = body.copy_from
          ? 'train-Copy1.py'
          : body.type === 'directory'
            ? 'Untitled Folder'
            : `untitled${body.ext}`;
        return { status: 201, body: fileModel(`x/${name}`) };
      }
      return { status: 200, body: fileModel('x/y') };
    });
    const renamed = await drive.rename('opt/ml/a.txt', 'opt/ml/b.txt');
    await drive.delete('opt/ml/b.txt');
    const folder = await drive.newUntitled({
      path: 'opt/ml',
      type: 'directory'
    });
    const file = await drive.newUntitled({ path: 'opt/ml', ext: '.py' });
    const copy = await drive.copy('opt/ml/code/train.py', 'opt/ml/code');
    expect(
      calls.map(c => [c.method, c.url.pathname.split('/files/')[1], c.body])
    ).toEqual([
      ['PATCH', 'opt/ml/a.txt', { path: 'opt/ml/b.txt' }],
      ['DELETE', 'opt/ml/b.txt', undefined],
      ['POST', 'opt/ml', { type: 'directory' }],
      ['POST', 'opt/ml', { type: 'file', ext: '.py' }],
      ['POST', 'opt/ml/code', { copy_from: 'opt/ml/code/train.py' }]
    ]);
    // Paths are the drive's: the new names joined to the directory asked.
    expect(renamed.path).toBe('opt/ml/b.txt');
    expect(folder.path).toBe('opt/ml/Untitled Folder');
    expect(file.path).toBe('opt/ml/untitled.py');
    expect(copy.path).toBe('opt/ml/code/train-Copy1.py');
  });

  it('refuses a notebook, which a container file may not open as', async () => {
    const { drive, calls } = driveAnswering(() => ({ status: 200 }));
    await expect(
      drive.get('a.ipynb', { type: 'notebook', format: 'json', content: true })
    ).rejects.toMatchObject({ code: 'unsupported_format' });
    await expect(
      drive.save('a.ipynb', { type: 'notebook', format: 'json', content: {} })
    ).rejects.toMatchObject({ code: 'unsupported_format' });
    expect(calls).toHaveLength(0);
  });

  it('downloads from the ?download=1 URL with the transport and the XSRF token', async () => {
    const { drive } = driveAnswering(() => ({ status: 200 }), 'ssh');
    document.cookie = '_xsrf=2|abc|def';
    const url = new URL(await drive.getDownloadUrl('opt/ml/output/a b.tar'));
    expect(url.origin).toBe('http://localhost:8888');
    expect(url.pathname).toBe(
      `/lab-base/sm-debug/jobs/${JOB}/hosts/algo-1/files/opt/ml/output/a%20b.tar`
    );
    expect(url.searchParams.get('download')).toBe('1');
    expect(url.searchParams.get('transport')).toBe('ssh');
    expect(url.searchParams.get('_xsrf')).toBe('2|abc|def');
  });

  it('leaves the transport to the server when it has none', async () => {
    const { drive, calls } = driveAnswering(
      () => ({ status: 200, body: fileModel('a') }),
      null
    );
    await drive.get('a');
    expect(calls[0].url.searchParams.has('transport')).toBe(false);
    expect(calls[0].url.searchParams.get('content')).toBe('0');
  });

  it('hands a probe over to the next load, then loads again', async () => {
    let n = 0;
    const { drive, calls } = driveAnswering(() => ({
      status: 200,
      body: fileModel('a.py', { format: 'text', content: `v${++n}` })
    }));
    await drive.probe('a.py', { format: 'text' });
    const first = await drive.get('a.py', { format: 'text', content: true });
    const second = await drive.get('a.py', { format: 'text', content: true });
    expect([first.content, second.content]).toEqual(['v1', 'v2']);
    expect(calls).toHaveLength(2);
  });

  it('keeps checkpoints in the page and writes one back', async () => {
    const { drive, calls } = driveAnswering(call => ({
      status: 200,
      body: fileModel('a.py', {
        format: 'text',
        content: call.method === 'GET' ? 'old\n' : null
      })
    }));
    expect(await drive.listCheckpoints('a.py')).toEqual([]);
    await drive.get('a.py', { format: 'text', content: true });
    const checkpoint = await drive.createCheckpoint('a.py');
    // The content the drive just loaded: no second request.
    expect(calls).toHaveLength(1);
    await drive.save('a.py', {
      type: 'file',
      format: 'text',
      content: 'new\n'
    });
    expect(await drive.listCheckpoints('a.py')).toEqual([checkpoint]);
    await drive.restoreCheckpoint('a.py', checkpoint.id);
    expect(calls[calls.length - 1].body).toEqual({
      type: 'file',
      format: 'text',
      content: 'old\n'
    });
  });
});

import { RequestFunction, SMDebugAPI } from '../../api';
import { SMDebugError } from '../../request';
import { IKernelStart } from '../../types';
import { IKernelOpener, ISwitchableNotebook } from '../launcher';

/**
 * A promise the test settles when it wants.
 */
export function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

export function startOf(id: string, transport: 'ssm' | 'ssh' = 'ssh') {
  return {
    kernel: { id, name: `smdebug_${id}` },
    transport,
    target: '127.0.0.1:2222'
  } as IKernelStart;
}

/**
 * A `/sm-debug` server that answers each POST .../kernels with the next
 * answer the test gives (a start or an error), and records the calls.
 */
export class KernelServer {
  calls: { method: string; path: string; body: unknown }[] = [];
  answers: (IKernelStart | SMDebugError | Promise<IKernelStart>)[] = [];

  readonly request: RequestFunction = async <T>(
    path: string,
    init: RequestInit = {}
  ) => {
    this.calls.push({
      method: init.method ?? 'GET',
      path,
      body: init.body ? JSON.parse(init.body as string) : undefined
    });
    const answer = this.answers.shift();
    if (!answer) {
      throw new Error(`no answer for ${path}`);
    }
    if (answer instanceof SMDebugError) {
      throw answer;
    }
    return (await answer) as unknown as T;
  };

  readonly api = new SMDebugAPI(this.request);
}

/**
 * An opener that records what it was asked; `fail` makes the next open
 * throw.
 */
export class FakeOpener implements IKernelOpener {
  opened: { what: string; start: IKernelStart; title?: string }[] = [];
  shutdowns: string[] = [];
  current: ISwitchableNotebook | null = null;
  fail: Error | null = null;

  async notebook(start: IKernelStart) {
    this._maybeFail();
    this.opened.push({ what: 'notebook', start });
    return 'notebook-widget';
  }

  async console(start: IKernelStart, title: string) {
    this._maybeFail();
    this.opened.push({ what: 'console', start, title });
    return 'console-widget';
  }

  currentNotebook() {
    return this.current;
  }

  async shutdown(kernelId: string) {
    this.shutdowns.push(kernelId);
  }

  private _maybeFail() {
    const fail = this.fail;
    if (fail) {
      this.fail = null;
      throw fail;
    }
  }
}

/**
 * A notebook whose kernel changes are recorded.
 */
export function notebookAt(path: string) {
  const changes: { id: string; name: string }[] = [];
  const notebook: ISwitchableNotebook = {
    path,
    changeKernel: async kernel => {
      changes.push(kernel);
    }
  };
  return { notebook, changes };
}

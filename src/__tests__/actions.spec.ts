import { ActionStates } from '../actions';
import { SMDebugError } from '../request';

/**
 * A request the test answers when it wants.
 */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

describe('ActionStates', () => {
  it('is idle for a key that never ran', () => {
    const states = new ActionStates<boolean, string>(() => undefined);
    expect(states.get('a')).toEqual({
      pending: null,
      error: null,
      result: null
    });
    expect(states.isPending('a')).toBe(false);
  });

  it('says what is in flight, refuses a second request, keeps the answer', async () => {
    let changes = 0;
    const states = new ActionStates<boolean, string>(() => changes++);
    const answer = deferred<string>();
    const first = states.run('job-1', true, () => answer.promise);
    expect(states.get('job-1').pending).toBe(true);
    expect(changes).toBe(1);
    // While one is in flight, another for the same job is refused at once...
    const request = jest.fn(() => Promise.resolve('no'));
    expect(await states.run('job-1', false, request)).toBeNull();
    expect(request).not.toHaveBeenCalled();
    // ...but another job is its own.
    expect(await states.run('job-2', false, () => Promise.resolve('b'))).toBe(
      'b'
    );
    answer.resolve('done');
    expect(await first).toBe('done');
    expect(states.get('job-1')).toEqual({
      pending: null,
      error: null,
      result: 'done'
    });
    expect(changes).toBe(4);
  });

  it("keeps a refusal with the server's reason until dismissed", async () => {
    const states = new ActionStates<true, string>(() => undefined);
    await states.run('job-1', true, () => Promise.resolve('copy-1'));
    const refusal = new SMDebugError({
      status: 409,
      code: 'conflict',
      message: 'It finished.',
      hint: 'Refresh.'
    });
    expect(
      await states.run('job-1', true, () => Promise.reject(refusal))
    ).toBeNull();
    expect(states.get('job-1')).toEqual({
      pending: null,
      error: refusal,
      result: null
    });
    states.clearError('job-1');
    expect(states.get('job-1').error).toBeNull();
    // Anything thrown becomes an SMDebugError.
    await states.run('job-1', true, () => Promise.reject(new Error('boom')));
    expect(states.get('job-1').error).toBeInstanceOf(SMDebugError);
    expect(states.get('job-1').error?.message).toBe('boom');
  });

  it('keeps the result when an error is dismissed', async () => {
    const states = new ActionStates<true, string>(() => undefined);
    await states.run('job-1', true, () => Promise.resolve('copy-1'));
    states.clearError('job-1');
    expect(states.get('job-1').result).toBe('copy-1');
  });
});

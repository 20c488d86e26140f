import { nullTranslator } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { RequestFunction, SMDebugAPI } from '../api';
import { IStacksResponse } from '../types';
import { StacksWidget } from '../stacks';

const frame = (name: string, line: number) => ({
  name,
  file: 'train.py',
  line
});

const ANSWER: IStacksResponse = {
  job: 'ddp',
  transport: 'ssh',
  hosts: {
    'algo-1': { seconds: 1, py_spy: 'container', processes: [] },
    'algo-2': { seconds: 1, py_spy: 'pushed', processes: [] },
    'algo-3': {
      seconds: 5,
      error: { code: 'timed_out', message: 'no answer', hint: 'retry' }
    }
  },
  groups: [
    {
      headline: '_read_shard_blocking at train.py:34',
      frames: [frame('_read_shard_blocking', 34), frame('next_batch', 27)],
      members: [{ host: 'algo-2', pid: 9, thread: 'MainThread' }],
      hosts: ['algo-2'],
      hosts_text: 'algo-2',
      count: 1,
      outlier: true
    },
    {
      headline: '_wait_for_peers at train.py:22',
      frames: [frame('_wait_for_peers', 22), frame('all_reduce', 17)],
      members: [],
      hosts: ['algo-1', 'algo-2'],
      hosts_text: 'algo-1..2',
      count: 7,
      outlier: false
    }
  ],
  outliers: ['algo-2: _read_shard_blocking at train.py:34'],
  text: '== algo-2 ...'
};

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setTimeout(resolve, 10));
  }
}

describe('StacksWidget', () => {
  it('asks for the stacks once and shows the outlier first, apart', async () => {
    const calls: { path: string; body: unknown }[] = [];
    const request: RequestFunction = async <T,>(
      path: string,
      init: RequestInit = {}
    ) => {
      calls.push({ path, body: JSON.parse(init.body as string) });
      return ANSWER as unknown as T;
    };
    const widget = new StacksWidget({
      api: new SMDebugAPI(request),
      job: 'ddp',
      transport: 'ssh',
      trans: nullTranslator.load('jupyter_sm_debug')
    });
    Widget.attach(widget, document.body);
    await settle();
    widget.update();
    await settle();

    expect(calls).toEqual([
      { path: 'jobs/ddp/stacks', body: { transport: 'ssh' } }
    ]);
    const groups = widget.node.querySelectorAll('.jp-SMDebug-stackGroup');
    expect(groups.length).toBe(2);
    expect(groups[0].classList.contains('jp-mod-outlier')).toBe(true);
    expect(groups[0].textContent).toContain('algo-2');
    expect(groups[0].textContent).toContain('_read_shard_blocking');
    // The outlier is open with its frames; the big group stays folded.
    expect(
      groups[0].querySelectorAll('.jp-SMDebug-stackFrames li').length
    ).toBe(2);
    expect(groups[1].classList.contains('jp-mod-outlier')).toBe(false);
    expect(groups[1].querySelector('.jp-SMDebug-stackFrames')).toBeNull();
    // A host that did not answer is said so; the pushed py-spy is mentioned.
    expect(
      widget.node.querySelector('[data-host="algo-3"]')?.textContent
    ).toContain('no answer');
    expect(widget.node.textContent).toContain('py-spy was sent to algo-2');
    widget.dispose();
  });
});

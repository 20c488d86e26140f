import { nullTranslator } from '@jupyterlab/translation';

import { SMDebugAPI } from '../api';
import { ForwardTab, forwardTitle, forwardURL, parsePort } from '../forward';
import { IForward } from '../types';

const trans = nullTranslator.load('jupyter_sm_debug');

const FORWARD: IForward = {
  job: 'resnet-1',
  host: 'algo-1',
  port: 6006,
  transport: 'ssm',
  local_port: 40001,
  target: 'sagemaker-training-job:resnet-1_algo-1',
  url: '/lab-base/sm-debug/proxy/resnet-1/algo-1/6006/',
  created: 0
};

describe('parsePort', () => {
  it('takes 1-65535 written as digits only', () => {
    expect(parsePort('6006')).toBe(6006);
    expect(parsePort(' 8080 ')).toBe(8080);
    expect(parsePort('1')).toBe(1);
    expect(parsePort('65535')).toBe(65535);
  });

  it('refuses everything else', () => {
    for (const text of [
      '0',
      '65536',
      '',
      '-1',
      '6006a',
      '06006',
      '1e3',
      '80.0'
    ]) {
      expect(parsePort(text)).toBeNull();
    }
  });
});

describe('forward tabs', () => {
  it('are titled app · host · job, TensorBoard on 6006', () => {
    expect(forwardTitle(trans, FORWARD)).toBe(
      'TensorBoard · algo-1 · resnet-1'
    );
    expect(forwardTitle(trans, { ...FORWARD, port: 8081 })).toBe(
      'Port 8081 · algo-1 · resnet-1'
    );
  });

  it('show the proxy URL of this origin in an iframe', () => {
    expect(forwardURL(FORWARD)).toBe(
      `${window.location.origin}/lab-base/sm-debug/proxy/resnet-1/algo-1/6006/`
    );
    const tab = new ForwardTab(FORWARD, trans);
    expect(tab.id).toBe(ForwardTab.idOf(FORWARD));
    expect(tab.title.label).toBe('TensorBoard · algo-1 · resnet-1');
    expect(tab.content.url).toBe(forwardURL(FORWARD));
    tab.dispose();
  });
});

describe('the forwards API', () => {
  it('posts the port and deletes by port', async () => {
    const calls: [string, RequestInit | undefined][] = [];
    const api = new SMDebugAPI(
      async <T>(endPoint: string, init?: RequestInit) => {
        calls.push([endPoint, init]);
        return FORWARD as unknown as T;
      }
    );
    await api.openPort('resnet-1', 'algo-1', 6006, 'ssh');
    await api.closePort('resnet-1', 'algo-1', 6006);
    await api.forwards();
    expect(calls[0][0]).toBe('jobs/resnet-1/hosts/algo-1/ports');
    expect(calls[0][1]?.method).toBe('POST');
    expect(JSON.parse(String(calls[0][1]?.body))).toEqual({
      port: 6006,
      transport: 'ssh'
    });
    expect(calls[1]).toEqual([
      'jobs/resnet-1/hosts/algo-1/ports/6006',
      { method: 'DELETE' }
    ]);
    expect(calls[2][0]).toBe('forwards');
  });
});

describe('the forwarded-app tab (issue 22, finding 1)', () => {
  it('sandboxes its iframe into an opaque origin', () => {
    const tab = new ForwardTab(FORWARD, trans);
    const iframe = tab.content.node.querySelector(
      'iframe'
    ) as HTMLIFrameElement;
    const flags = (iframe.getAttribute('sandbox') ?? '').split(/\s+/);
    expect(flags).not.toContain('allow-same-origin');
    expect(flags).not.toContain('allow-top-navigation');
    expect(flags).not.toContain('allow-popups-to-escape-sandbox');
    expect(flags).toEqual(
      expect.arrayContaining([
        'allow-scripts',
        'allow-forms',
        'allow-downloads'
      ])
    );
    tab.dispose();
  });
});

import { nullTranslator } from '@jupyterlab/translation';

import { ForwardTab } from '../forward';

// The tab's own argument type (wherever the API types live).
type Forward = ConstructorParameters<typeof ForwardTab>[0];

const FORWARD: Forward = {
  job: 'resnet-1',
  host: 'algo-1',
  port: 6006,
  transport: 'ssh',
  local_port: 40001,
  target: 'sagemaker-training-job:resnet-1_algo-1',
  url: '/sm-debug/proxy/resnet-1/algo-1/6006/',
  created: 0
};

describe('the forwarded-app tab (issue 22, finding 1)', () => {
  it('sandboxes its iframe into an opaque origin', () => {
    const tab = new ForwardTab(
      FORWARD,
      nullTranslator.load('jupyter_sm_debug')
    );
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

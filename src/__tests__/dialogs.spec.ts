import { nullTranslator } from '@jupyterlab/translation';

import { describeHoldPlan, formatDuration } from '../dialogs';

describe('formatDuration', () => {
  const trans = nullTranslator.load('jupyter_sm_debug');

  it('says how long a hold lasts in the largest whole units', () => {
    expect(formatDuration(trans, 1800)).toBe('30 minutes');
    expect(formatDuration(trans, 60)).toBe('1 minute');
    expect(formatDuration(trans, 3600)).toBe('1 hour');
    expect(formatDuration(trans, 5400)).toBe('1 h 30 min');
    expect(formatDuration(trans, 86400)).toBe('24 hours');
    expect(formatDuration(trans, 90)).toBe('90 seconds');
    expect(formatDuration(trans, 1)).toBe('1 second');
  });

  it('says that 0 means no hold, and nothing for values the server refuses', () => {
    expect(formatDuration(trans, 0)).toMatch(/no hold/);
    expect(formatDuration(trans, -1)).toBe('');
    expect(formatDuration(trans, 1.5)).toBe('');
    expect(formatDuration(trans, 86401)).toBe('');
  });
});

describe('describeHoldPlan', () => {
  const trans = nullTranslator.load('jupyter_sm_debug');

  it('names the command the copy wraps, or says plainly why none holds', () => {
    expect(
      describeHoldPlan(trans, {
        mechanism: 'wrapper',
        command: 'bash -m start_with_right_hostname.sh train',
        possible: true,
        reason: 'holds by wrapping `bash -m start_with_right_hostname.sh train`'
      })
    ).toBe('Holds by wrapping `bash -m start_with_right_hostname.sh train`.');
    expect(
      describeHoldPlan(trans, {
        mechanism: 'none',
        command: null,
        possible: false,
        reason:
          "Cannot read the image's ENTRYPOINT from ECR: needs ecr:BatchGetImage."
      })
    ).toMatch(/^No hold is possible: .*ecr:BatchGetImage/);
    expect(describeHoldPlan(trans, null)).toBe('');
  });
});

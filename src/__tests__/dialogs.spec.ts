import { Dialog } from '@jupyterlab/apputils';
import { nullTranslator } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import {
  describeHoldPlan,
  formatDuration,
  PortBody,
  portProblem
} from '../dialogs';

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

  it('says when the runtime limit may end the copy before the hold does', () => {
    const limit =
      'The copy may train for at most 120 h (MaxRuntimeInSeconds, raised from 120 h within the 120 h limit), so SageMaker may stop it before the hold window ends.';
    expect(
      describeHoldPlan(trans, {
        mechanism: 'wrapper',
        command: 'python train.py',
        possible: true,
        reason: 'holds by wrapping `python train.py`',
        runtime_limit: limit
      })
    ).toBe('Holds by wrapping `python train.py`. ' + limit);
  });

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

describe('the Open port dialog', () => {
  const trans = nullTranslator.load('jupyter_sm_debug');

  it('takes 1 to 65535 and says what is wrong with anything else', () => {
    expect(portProblem(trans, '6006')).toBe('');
    expect(portProblem(trans, '1')).toBe('');
    expect(portProblem(trans, '65535')).toBe('');
    expect(portProblem(trans, '99999')).toBe(
      '"99999" is not a port: enter a whole number from 1 to 65535.'
    );
    expect(portProblem(trans, '0')).not.toBe('');
    expect(portProblem(trans, '80.5')).not.toBe('');
    expect(portProblem(trans, ' ')).toBe(
      'Enter the port the app listens on, 1 to 65535.'
    );
  });

  it('says it in the dialog and disables Open until the port is one', () => {
    const body = new PortBody(trans);
    const dialog = new Dialog({
      title: 'Open a port',
      body,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Open' })]
    });
    Widget.attach(dialog, document.body);
    const open =
      dialog.node.querySelector<HTMLButtonElement>('.jp-mod-accept')!;
    const type = (text: string) => {
      body.input.value = text;
      body.input.dispatchEvent(new Event('input', { bubbles: true }));
    };
    expect(body.getValue()).toBe(6006);
    expect(body.help.textContent).toBe('');

    type('99999');
    expect(body.getValue()).toBeNull();
    expect(body.input.getAttribute('aria-invalid')).toBe('true');
    expect(body.help.classList.contains('jp-mod-invalid')).toBe(true);
    expect(body.help.textContent).toContain('65535');
    expect(open.disabled).toBe(true);

    type('8080');
    expect(body.getValue()).toBe(8080);
    expect(body.help.classList.contains('jp-mod-invalid')).toBe(false);
    expect(open.disabled).toBe(false);
    dialog.dispose();
  });
});

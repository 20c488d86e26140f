import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { DEFAULT_PORT, parsePort } from './forward';
import { IHoldPlan, isValidHold, MAX_HOLD_SECONDS } from './types';

/**
 * Cancel, then the dialog's own button.
 */
function cancelThen(
  trans: TranslationBundle,
  cancelAria: string,
  ok: Dialog.IButton
): Dialog.IButton[] {
  return [
    Dialog.cancelButton({ label: trans.__('Cancel'), ariaLabel: cancelAria }),
    ok
  ];
}

/**
 * Ask how long a debug copy's containers should stay up after a failure.
 *
 * @param plan how the copy would hold (the server's dry run), shown before
 *   launch; null when unknown
 * @returns the hold window in seconds, or null when the user cancelled
 */
export async function askHoldSeconds(
  trans: TranslationBundle,
  job: string,
  defaultSeconds: number,
  plan: IHoldPlan | null = null
): Promise<number | null> {
  let value = defaultSeconds;
  let problem = '';
  for (;;) {
    const body = new HoldBody(trans, value, problem, plan);
    const result = await showDialog<number>({
      title: trans.__('Debug a copy of %1', job),
      body,
      buttons: cancelThen(
        trans,
        trans.__('Cancel: start no copy'),
        Dialog.okButton({
          label: trans.__('Start copy'),
          ariaLabel: trans.__('Start a debug copy of %1', job)
        })
      ),
      focusNodeSelector: 'input'
    });
    if (!result.button.accept) {
      return null;
    }
    const seconds = result.value ?? NaN;
    if (isValidHold(seconds)) {
      return seconds;
    }
    // Ask again, saying what was wrong (the dialog cannot refuse to close).
    value = Number.isFinite(seconds) ? seconds : defaultSeconds;
    problem = trans.__(
      'Enter a whole number of seconds from 0 to %1 (24 hours).',
      MAX_HOLD_SECONDS
    );
  }
}

/**
 * "2 h 30 min", "45 min", "90 s": how long a hold lasts, for people.
 */
export function formatDuration(
  trans: TranslationBundle,
  seconds: number
): string {
  if (!isValidHold(seconds)) {
    return '';
  }
  if (seconds === 0) {
    return trans.__('no hold: a failed copy ends at once');
  }
  if (seconds < 60 || seconds % 60 !== 0) {
    return trans._n('%1 second', '%1 seconds', seconds);
  }
  const minutes = seconds / 60;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  if (hours === 0) {
    return trans._n('%1 minute', '%1 minutes', minutes);
  }
  if (rest === 0) {
    return trans._n('%1 hour', '%1 hours', hours);
  }
  return trans.__('%1 h %2 min', hours, rest);
}

/**
 * What the dialog says about the hold: the command it wraps, or why none.
 */
export function describeHoldPlan(
  trans: TranslationBundle,
  plan: IHoldPlan | null
): string {
  if (!plan) {
    return '';
  }
  const limit =
    plan.possible && plan.runtime_limit ? ' ' + plan.runtime_limit : '';
  if (plan.possible && plan.mechanism === 'entrypoint') {
    return trans.__("Holds with the image's own sm-debug-entrypoint.") + limit;
  }
  if (plan.possible && plan.command) {
    return trans.__('Holds by wrapping `%1`.', plan.command) + limit;
  }
  return trans.__('No hold is possible: %1', plan.reason);
}

/**
 * The dialog's body: what a debug copy is, how it holds, and the hold window
 * in seconds.
 */
class HoldBody extends Widget implements Dialog.IBodyWidget<number> {
  constructor(
    trans: TranslationBundle,
    value: number,
    problem: string,
    plan: IHoldPlan | null
  ) {
    super();
    this.addClass('jp-SMDebug-holdDialog');

    const intro = document.createElement('p');
    intro.textContent = trans.__(
      'Starts a new training job with the same configuration and remote debug on. If its training fails, its containers stay up for the hold window so you can attach and look around.'
    );

    const label = document.createElement('label');
    label.className = 'jp-SMDebug-holdLabel';
    label.textContent = trans.__('Hold a failed container for (seconds)');

    this._input = document.createElement('input');
    this._input.type = 'number';
    this._input.min = '0';
    this._input.max = String(MAX_HOLD_SECONDS);
    this._input.step = '60';
    this._input.required = true;
    this._input.value = String(value);
    this._input.className = 'jp-mod-styled jp-SMDebug-holdInput';
    this._input.setAttribute('aria-describedby', 'jp-SMDebug-holdHelp');
    label.appendChild(this._input);

    const help = document.createElement('div');
    help.id = 'jp-SMDebug-holdHelp';
    help.className = 'jp-SMDebug-holdHelp';
    help.setAttribute('aria-live', 'polite');
    const describe = () => {
      const seconds = Number(this._input.value);
      const invalid = this._input.value === '' || !isValidHold(seconds);
      this._input.setAttribute('aria-invalid', String(invalid));
      help.classList.toggle('jp-mod-invalid', invalid);
      help.textContent = invalid
        ? problem ||
          trans.__(
            'Enter a whole number of seconds from 0 to %1 (24 hours).',
            MAX_HOLD_SECONDS
          )
        : formatDuration(trans, seconds);
    };
    this._input.addEventListener('input', describe);
    describe();
    if (problem) {
      help.classList.add('jp-mod-invalid');
      help.textContent = problem;
    }

    this.node.append(intro);
    const mechanism = describeHoldPlan(trans, plan);
    if (mechanism) {
      const how = document.createElement('p');
      how.className = 'jp-SMDebug-holdMechanism';
      how.classList.toggle('jp-mod-warning', !plan?.possible);
      how.textContent = mechanism;
      this.node.append(how);
    }
    this.node.append(label, help);
  }

  getValue(): number {
    const text = this._input.value.trim();
    return text === '' ? NaN : Number(text);
  }

  private _input: HTMLInputElement;
}

/**
 * Ask before stopping a job: it cannot be undone.
 *
 * @returns whether the user confirmed
 */
export async function confirmStop(
  trans: TranslationBundle,
  job: string,
  held: boolean
): Promise<boolean> {
  const body = document.createElement('div');
  body.className = 'jp-SMDebug-stopDialog';
  const text = document.createElement('p');
  text.textContent = held
    ? trans.__(
        'Its containers, held for debugging, end now: open shells on them close. SageMaker marks the job Stopped. This cannot be undone.'
      )
    : trans.__(
        'SageMaker sends the training containers SIGTERM, then ends them within two minutes; what was not saved to /opt/ml/model or checkpoints is lost. The job ends as Stopped. This cannot be undone.'
      );
  body.appendChild(text);
  const result = await showDialog({
    title: trans.__('Stop %1?', job),
    body: new Widget({ node: body }),
    buttons: cancelThen(
      trans,
      trans.__('Cancel: keep the job running'),
      Dialog.warnButton({
        label: trans.__('Stop job'),
        ariaLabel: trans.__('Stop the training job %1', job)
      })
    ),
    defaultButton: 0
  });
  return result.button.accept;
}

/**
 * What is wrong with a port typed into the Open port dialog; '' when it is a
 * port (1 to 65535).
 */
export function portProblem(trans: TranslationBundle, text: string): string {
  if (parsePort(text) !== null) {
    return '';
  }
  return text.trim() === ''
    ? trans.__('Enter the port the app listens on, 1 to 65535.')
    : trans.__(
        '"%1" is not a port: enter a whole number from 1 to 65535.',
        text.trim()
      );
}

/**
 * The body of the Open port dialog: the port, checked as it is typed. While
 * it is not a port the message says why and the dialog's Open button is
 * disabled: the dialog disables accepting while its body has an `:invalid`
 * input. (Not `jp-mod-error`: the dialog looks before this body's listener
 * updates it, so a stale mark would keep Open disabled for a valid port.)
 */
export class PortBody
  extends Widget
  implements Dialog.IBodyWidget<number | null>
{
  constructor(trans: TranslationBundle, value = String(DEFAULT_PORT)) {
    super();
    this.addClass('jp-SMDebug-portDialog');
    const label = document.createElement('label');
    label.className = 'jp-SMDebug-portLabel';
    label.textContent = trans.__(
      'Port the app listens on in the container (6006: TensorBoard)'
    );
    // Native constraints too: the dialog checks `:invalid` as soon as the
    // value changes, before this body's own listener runs.
    this.input = document.createElement('input');
    this.input.type = 'number';
    this.input.min = '1';
    this.input.max = '65535';
    this.input.step = '1';
    this.input.required = true;
    this.input.value = value;
    this.input.className = 'jp-mod-styled jp-SMDebug-portInput';
    this.input.setAttribute('aria-describedby', 'jp-SMDebug-portHelp');
    label.appendChild(this.input);
    this.help = document.createElement('div');
    this.help.id = 'jp-SMDebug-portHelp';
    this.help.className = 'jp-SMDebug-portHelp';
    this.help.setAttribute('aria-live', 'polite');
    const check = () => {
      const problem = portProblem(trans, this.input.value);
      this.input.setAttribute('aria-invalid', String(!!problem));
      this.help.classList.toggle('jp-mod-invalid', !!problem);
      this.help.textContent = problem;
    };
    this.input.addEventListener('input', check);
    check();
    this.node.append(label, this.help);
  }

  /**
   * The port, or null when the text is not one.
   */
  getValue(): number | null {
    return parsePort(this.input.value);
  }

  readonly input: HTMLInputElement;
  readonly help: HTMLDivElement;
}

/**
 * The "Open port…" dialog: a port number, 6006 by default, checked as it is
 * typed. Null when cancelled.
 */
export async function askPort(
  trans: TranslationBundle,
  host: string,
  job: string
): Promise<number | null> {
  const result = await showDialog<number | null>({
    title: trans.__('Open a port of %1 (%2)', host, job),
    body: new PortBody(trans),
    buttons: cancelThen(
      trans,
      trans.__('Cancel: open no port'),
      Dialog.okButton({
        label: trans.__('Open'),
        ariaLabel: trans.__('Open the port of %1', host)
      })
    ),
    focusNodeSelector: 'input'
  });
  return result.button.accept ? (result.value ?? null) : null;
}

import { TranslationBundle } from '@jupyterlab/translation';
import { consoleIcon, LabIcon, notebookIcon } from '@jupyterlab/ui-components';

import { KernelUse } from './launcher';

/**
 * The command ids of the kernel commands, by use.
 */
export const KERNEL_COMMANDS: Record<KernelUse, string> = {
  notebook: 'sm-debug:open-notebook',
  switch: 'sm-debug:switch-notebook',
  console: 'sm-debug:open-console'
};

/**
 * What the palette says of a kernel command.
 */
export interface IKernelCommandText {
  use: KernelUse;
  id: string;
  /** The label with a job and host given. */
  label: (job: string, host: string) => string;
  /** The label without (the command asks). */
  otherwise: string;
  caption: string;
  icon?: LabIcon;
}

/**
 * The words of the kernel commands: a new notebook, the current notebook
 * switched, a console.
 */
export function kernelCommandTexts(
  trans: TranslationBundle
): IKernelCommandText[] {
  return [
    {
      use: 'notebook',
      id: KERNEL_COMMANDS.notebook,
      label: (job, host) => trans.__('New Notebook on %1 of %2', host, job),
      otherwise: trans.__('New Notebook on a SageMaker Training Host…'),
      caption: trans.__(
        'A new notebook whose Python kernel runs inside the container'
      ),
      icon: notebookIcon
    },
    {
      use: 'switch',
      id: KERNEL_COMMANDS.switch,
      label: (job, host) =>
        trans.__('Switch the Notebook to %1 of %2', host, job),
      otherwise: trans.__('Switch the Notebook to a SageMaker Training Host…'),
      caption: trans.__(
        "Give the current notebook a new Python kernel inside the container (the old kernel's variables are lost)"
      )
    },
    {
      use: 'console',
      id: KERNEL_COMMANDS.console,
      label: (job, host) => trans.__('Python Console on %1 of %2', host, job),
      otherwise: trans.__('Python Console on a SageMaker Training Host…'),
      caption: trans.__(
        'A Python console whose kernel runs inside the container'
      ),
      icon: consoleIcon
    }
  ];
}

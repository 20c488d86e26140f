import { LabIcon } from '@jupyterlab/ui-components';

import smDebugSvg from '../style/icons/sm-debug.svg';

/**
 * The SageMaker Debug sidebar icon: a bug inside a training container (theme colours).
 */
export const smDebugIcon = new LabIcon({
  name: 'jupyter-sm-debug:icon',
  svgstr: smDebugSvg
});

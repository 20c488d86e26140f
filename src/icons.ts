import { LabIcon } from '@jupyterlab/ui-components';

import smDebugSvg from '../style/icons/sm-debug.svg';

/**
 * The SageMaker Debug sidebar icon: a terminal window.
 */
export const smDebugIcon = new LabIcon({
  name: 'jupyter-sm-debug:icon',
  svgstr: smDebugSvg
});

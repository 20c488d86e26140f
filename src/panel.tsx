import { ReactWidget, SidePanel } from '@jupyterlab/ui-components';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import * as React from 'react';

import { smDebugIcon } from './icons';

/**
 * The id of the SageMaker Debug sidebar panel.
 */
export const PANEL_ID = 'jp-SMDebug-panel';

/**
 * The SageMaker Debug sidebar: a toolbar and the job list.
 */
export class SMDebugPanel extends SidePanel {
  constructor(options: SMDebugPanel.IOptions = {}) {
    const translator = options.translator ?? nullTranslator;
    super({ translator });
    const trans = translator.load('jupyter_sm_debug');
    this.id = PANEL_ID;
    this.addClass('jp-SMDebug-panel');
    this.title.icon = smDebugIcon;
    this.title.caption = trans.__('SageMaker Debug');

    const content = ReactWidget.create(
      <div className="jp-SMDebug-content">
        <h2 className="jp-SMDebug-title">{trans.__('SageMaker Debug')}</h2>
      </div>
    );
    content.addClass('jp-SMDebug-body');
    this.addWidget(content);
  }
}

export namespace SMDebugPanel {
  export interface IOptions {
    translator?: ITranslator;
  }
}

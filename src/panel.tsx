import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { ReactWidget, SidePanel } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Panel } from '@lumino/widgets';
import * as React from 'react';

import { AttachManager } from './attach';
import { IJobActions, JobsView } from './components/JobsView';
import { smDebugIcon } from './icons';
import { JobsModel } from './model';

/**
 * The id of the SageMaker Debug sidebar panel.
 */
export const PANEL_ID = 'jp-SMDebug-panel';

/**
 * The SageMaker Debug sidebar. It tells the model when it is shown or hidden,
 * so the job list polls only while someone can see it.
 */
export class SMDebugPanel extends SidePanel {
  constructor(options: SMDebugPanel.IOptions) {
    const translator = options.translator ?? nullTranslator;
    super({ translator, content: new Panel() });
    const trans = translator.load('jupyter_sm_debug');
    this._model = options.model;
    this.id = PANEL_ID;
    this.addClass('jp-SMDebug-panel');
    this.title.icon = smDebugIcon;
    this.title.caption = trans.__('SageMaker Debug');

    const view = ReactWidget.create(
      <JobsView
        model={options.model}
        attach={options.attach}
        actions={options.actions}
        trans={trans}
      />
    );
    view.addClass('jp-SMDebug-body');
    this.addWidget(view);
  }

  get model(): JobsModel {
    return this._model;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._model.isVisible = true;
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._model.isVisible = false;
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._model.isVisible = this.isVisible;
  }

  private _model: JobsModel;
}

export namespace SMDebugPanel {
  export interface IOptions {
    model: JobsModel;
    attach: AttachManager;
    /** What the panel's buttons do beyond the model (commands with dialogs). */
    actions: IJobActions;
    translator?: ITranslator;
  }
}

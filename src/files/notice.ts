import { TranslationBundle } from '@jupyterlab/translation';
import { downloadIcon, fileIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { HostDrive, IRefused } from './drive';

/**
 * Download a file of a drive: its `?download=1` URL (an attachment the server
 * streams) through a link, as JupyterLab's own Download does.
 */
export async function downloadFile(
  drive: HostDrive,
  localPath: string
): Promise<void> {
  const url = await drive.getDownloadUrl(localPath);
  const link = document.createElement('a');
  link.href = url;
  link.download = '';
  document.body.appendChild(link);
  link.click();
  document.body.removeChild(link);
}

/**
 * What opens instead of a file the page does not load: over the server's
 * size limit, or not text where text was asked for. Read-only: it says why
 * and offers the download.
 */
export class RefusedFileTab extends Widget {
  constructor(options: {
    drive: HostDrive;
    refused: IRefused;
    trans: TranslationBundle;
  }) {
    super();
    const { drive, refused, trans } = options;
    const { job, host } = drive.ref;
    const where = drive.containerPath(refused.path);
    const name = where.split('/').pop() || where;
    this.id = RefusedFileTab.idFor(drive, refused.path);
    this.addClass('jp-SMDebug-refusedFile');
    this.title.label = name;
    this.title.caption = trans.__('%1 · %2: %3', host, job, where);
    this.title.icon = fileIcon;
    this.title.closable = true;

    const heading = document.createElement('h2');
    heading.textContent = where;
    const host_ = document.createElement('p');
    host_.className = 'jp-SMDebug-refusedHost';
    host_.textContent = trans.__('On %1 of %2', host, job);
    const why = document.createElement('p');
    why.className = 'jp-SMDebug-refusedWhy';
    why.setAttribute('role', 'status');
    why.textContent =
      refused.reason === 'too_large'
        ? trans.__(
            'This file is too large to open in the browser. %1',
            refused.error.message
          )
        : trans.__(
            'This file is not text, so it is not shown here. %1',
            refused.error.message
          );
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'jp-mod-styled jp-mod-accept jp-SMDebug-download';
    const icon = document.createElement('span');
    downloadIcon.element({ container: icon, tag: 'span' });
    button.append(icon, document.createTextNode(trans.__('Download')));
    button.setAttribute('aria-label', trans.__('Download %1', where));
    button.addEventListener('click', () => {
      void downloadFile(drive, refused.path);
    });
    this.node.append(heading, host_, why, button);
  }

  static idFor(drive: HostDrive, localPath: string): string {
    return `jp-SMDebug-refused-${drive.name}:${localPath}`.replace(
      /[^A-Za-z0-9_:.-]/g,
      c => `_${c.charCodeAt(0).toString(16)}`
    );
  }
}

import './base.css';
import './hosts.css';
import './forward.css';
import './files.css';
import './kernels.css';

import './base.css';
import './hosts.css';
import './forward.css';
import './kernels.css';

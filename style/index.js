import './base.css';
import './forward.css';

import t from 'tap';
import { keyFamily } from '../src/x509/algorithms.ts';
t.equal(keyFamily('EC256'), 'EC');

// people.js: the screen is being built; until then it shows the placeholder.
export { default } from './coming.js';

// coming.js stands in for screens that are being built: it names the
// screen and says it is coming. Replace the route's load in app.js with
// the real module when it lands.

import { h, replace } from '../dom.js';

export default function render(ctx) {
  replace(ctx.main,
    h('h1', null, ctx.route.title),
    h('p', { class: 'coming' }, 'This screen is coming. Until it lands, the JSON API (/api/openapi.json) does what it will do.'));
}

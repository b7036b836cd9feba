// jsdom, plus the fetch classes Node has and jsdom lacks: ServerConnection
// builds Request objects and the fake server answers with Response objects.
const { TestEnvironment } = require('jest-environment-jsdom');

class Environment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of ['fetch', 'Request', 'Response', 'Headers', 'structuredClone']) {
      if (this.global[name] === undefined) {
        this.global[name] = globalThis[name];
      }
    }
  }
}

module.exports = Environment;

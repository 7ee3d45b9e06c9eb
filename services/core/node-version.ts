/** The oldest Node.js major Sluice runs on (package.json `engines`); the embedded store needs `node:sqlite`. */
export const MIN_NODE_MAJOR = 22;

/** A one-line reason this Node.js cannot run Sluice, or undefined when it can. */
export function nodeVersionProblem(version: string = process.versions.node): string | undefined {
  const major = Number(version.split('.')[0]);
  if (Number.isInteger(major) && major >= MIN_NODE_MAJOR) return undefined;
  return `sluice: Sluice needs Node.js >= ${MIN_NODE_MAJOR}, this is ${version} (in a clone of the repository, \`. .ci/node.sh\` puts Node 24 on PATH)`;
}

/** Exits with code 2 and the one-line reason when this Node.js is too old; called before anything else loads. */
export function exitOnOldNode(): void {
  const problem = nodeVersionProblem();
  if (problem) {
    process.stderr.write(`${problem}\n`);
    process.exit(2);
  }
}

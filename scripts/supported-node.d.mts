export function startNodePath(env?: NodeJS.ProcessEnv): string;
export function nodeToStartOn(env?: NodeJS.ProcessEnv, version?: string): Promise<string | null>;

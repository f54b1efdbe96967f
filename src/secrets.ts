/**
 * Secrets by reference (issue #18, finding 5). A deployment names where a secret lives instead of passing its value,
 * so the value never enters the CloudFormation template, serverless-state.json or the function's environment:
 * for each name of SECRET_NAMES, `NAME_SECRET_ARN` reads it from AWS Secrets Manager (GetSecretValue; `ARN#key`
 * takes one key of a JSON secret, such as RDS's managed `#password`), `NAME_SSM_PARAMETER` from SSM Parameter Store
 * (GetParameter with decryption, for SecureString). They are read once at init, before loadConfig validates the
 * result; plain `NAME` variables stay for the server and development. The AWS SDK clients are imported only when
 * a reference is given, so a deployment without references neither loads nor waits for them.
 */
import { ConfigError } from './config.ts';

export const SECRET_NAMES = [
  'MASTER_KEY',
  'OTHER_MASTER_KEYS',
  'DATABASE_URL',
  'DATABASE_PASSWORD',
  'JWT_PRIVATE_KEY',
  'JWT_PUBLIC_KEY',
  'PKCS11_PIN',
  'METRICS_TOKEN',
] as const;
type SecretName = (typeof SECRET_NAMES)[number];
type Env = Record<string, string | undefined>;

export interface SecretReference {
  name: SecretName;
  /** The variable that holds the reference, for error messages. */
  variable: string;
  store: 'secretsmanager' | 'ssm';
  id: string;
  /** Secrets Manager only: the key to take from a JSON secret. */
  jsonKey?: string;
}

/** The references `env` gives, checked for ambiguity (a value and a reference, or two references, for one name). */
export function secretReferences(env: Env): SecretReference[] {
  const references: SecretReference[] = [];
  for (const name of SECRET_NAMES) {
    const arn = env[`${name}_SECRET_ARN`] || undefined;
    const parameter = env[`${name}_SSM_PARAMETER`] || undefined;
    const given = [env[name] ? name : undefined, arn && `${name}_SECRET_ARN`, parameter && `${name}_SSM_PARAMETER`].filter(Boolean);
    if (given.length > 1) throw new ConfigError(`${given.join(' and ')} are exclusive: give ${name} one way`);
    if (arn) {
      const [id, jsonKey, ...rest] = arn.split('#');
      if (!id || rest.length > 0 || jsonKey === '')
        throw new ConfigError(`${name}_SECRET_ARN must be a secret ARN or name, optionally with #key, got '${arn}'`);
      references.push({ name, variable: `${name}_SECRET_ARN`, store: 'secretsmanager', id, jsonKey });
    } else if (parameter) {
      references.push({ name, variable: `${name}_SSM_PARAMETER`, store: 'ssm', id: parameter });
    }
  }
  return references;
}

/** The region an ARN names (a secret may live in another region than the function), else the SDK's default. */
function arnRegion(id: string): string | undefined {
  return /^arn:aws[\w-]*:(?:secretsmanager|ssm):([a-z0-9-]+):/.exec(id)?.[1];
}

async function readSecretsManager(reference: SecretReference): Promise<string> {
  // The SDK packages are CommonJS: Node and the esbuild bundle (scripts/bundle-lambda.mjs) both give their exports as `default`.
  const { SecretsManagerClient, GetSecretValueCommand } = (await import('@aws-sdk/client-secrets-manager')).default;
  const client = new SecretsManagerClient({ region: arnRegion(reference.id) });
  try {
    const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: reference.id }));
    if (SecretString === undefined) throw new ConfigError(`${reference.variable}: the secret holds binary data, not a string`);
    if (!reference.jsonKey) return SecretString;
    let value: unknown;
    try {
      value = (JSON.parse(SecretString) as Record<string, unknown>)[reference.jsonKey];
    } catch {
      throw new ConfigError(`${reference.variable}: #${reference.jsonKey} asks for a key of a JSON secret, and the secret is not JSON`);
    }
    if (typeof value !== 'string' && typeof value !== 'number')
      throw new ConfigError(`${reference.variable}: the secret has no key '${reference.jsonKey}'`);
    return String(value);
  } finally {
    client.destroy();
  }
}

async function readParameter(reference: SecretReference): Promise<string> {
  const { SSMClient, GetParameterCommand } = (await import('@aws-sdk/client-ssm')).default;
  const client = new SSMClient({ region: arnRegion(reference.id) });
  try {
    const { Parameter } = await client.send(new GetParameterCommand({ Name: reference.id, WithDecryption: true }));
    if (Parameter?.Value === undefined) throw new ConfigError(`${reference.variable}: parameter ${reference.id} has no value`);
    return Parameter.Value;
  } finally {
    client.destroy();
  }
}

/**
 * `env` with every referenced secret read into its plain name (and the references kept). A reference that cannot
 * be read fails the init with a ConfigError naming the variable and the store's error (never a value).
 */
export async function resolveSecretReferences(env: Env): Promise<Env> {
  const references = secretReferences(env);
  if (references.length === 0) return env;
  const values = await Promise.all(
    references.map(async (reference) => {
      try {
        return await (reference.store === 'secretsmanager' ? readSecretsManager(reference) : readParameter(reference));
      } catch (error) {
        if (error instanceof ConfigError) throw error;
        const { name, message } = error as Error;
        throw new ConfigError(`${reference.variable}: could not read ${reference.id}: ${name}: ${message}`);
      }
    }),
  );
  return { ...env, ...Object.fromEntries(references.map((reference, index) => [reference.name, values[index]])) };
}

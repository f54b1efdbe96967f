/** The console: sign-in, a hash router over the pages, and the navigation. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { checkToken, exchangeAccessKey, session } from './api.ts';
import { AccessKeysPage, AuditPage, BillingPage } from './pages/admin.tsx';
import { CaDetailPage } from './pages/ca-detail.tsx';
import { CaTreePage } from './pages/cas.tsx';
import { CertificateListPage, CertificatePage } from './pages/certificates.tsx';
import { ErrorBanner, Field, useAction, useTitle } from './ui.tsx';

function SignIn({ onSignedIn, ended }: { onSignedIn: () => void; ended: boolean }) {
  const [token, setToken] = useState('');
  const [access, setAccess] = useState('');
  const [secret, setSecret] = useState('');
  const action = useAction();
  useTitle('Sign in');
  const withToken = async (event: Event) => {
    event.preventDefault();
    const value = token.trim();
    if (await action.run(() => checkToken(value))) {
      session.signIn(value);
      onSignedIn();
    }
  };
  const withAccessKey = async (event: Event) => {
    event.preventDefault();
    let exchanged = '';
    if (await action.run(async () => (exchanged = await exchangeAccessKey(access.trim(), secret.trim())))) {
      session.signIn(exchanged);
      onSignedIn();
    }
  };
  return (
    <main class="signin">
      <h1>Private CA console</h1>
      {ended && (
        <p class="error" role="alert" data-test="session-ended">
          Your session ended: the token expired or was refused. Sign in again.
        </p>
      )}
      <form class="panel" onSubmit={withToken} data-test="signin-token">
        <h3>Sign in with a token</h3>
        <Field label="Token (printed by npm start, or npm run dev-token)">
          <textarea name="token" rows={4} value={token} onInput={(e) => setToken((e.target as HTMLTextAreaElement).value)} />
        </Field>
        <button type="submit">Sign in</button>
      </form>
      <form class="panel" onSubmit={withAccessKey} data-test="signin-key">
        <h3>or with an access key</h3>
        <Field label="Access key">
          <input name="access" value={access} onInput={(e) => setAccess((e.target as HTMLInputElement).value)} />
        </Field>
        <Field label="Secret key">
          <input name="secret" type="password" value={secret} onInput={(e) => setSecret((e.target as HTMLInputElement).value)} />
        </Field>
        <button type="submit">Sign in</button>
      </form>
      <ErrorBanner error={action.error} />
    </main>
  );
}

const NAV = [
  ['#/cas', 'CAs'],
  ['#/certificates', 'Certificates'],
  ['#/billing', 'Billing'],
  ['#/access-keys', 'Access keys'],
  ['#/audit', 'Audit'],
] as const;

function page(route: string) {
  const [, section, id] = route.split('/');
  switch (section) {
    case 'cas':
      return id ? <CaDetailPage key={id} id={id} /> : <CaTreePage />;
    case 'certificates':
      return id ? <CertificatePage key={id} id={id} /> : <CertificateListPage />;
    case 'billing':
      return <BillingPage />;
    case 'access-keys':
      return <AccessKeysPage />;
    case 'audit':
      return <AuditPage />;
    default:
      return <CaTreePage />;
  }
}

function App() {
  const [route, setRoute] = useState(location.hash || '#/cas');
  const [signedIn, setSignedIn] = useState(session.token !== null);
  // Signed out by a 401 (expired or refused token), not by the Sign out button: the sign-in page says so.
  const [ended, setEnded] = useState(false);
  useEffect(() => {
    const onHash = () => setRoute(location.hash || '#/cas');
    const onSignedOut = () => {
      setSignedIn(false);
      setEnded(true);
    };
    addEventListener('hashchange', onHash);
    addEventListener('pca-signed-out', onSignedOut);
    return () => {
      removeEventListener('hashchange', onHash);
      removeEventListener('pca-signed-out', onSignedOut);
    };
  }, []);
  if (!signedIn)
    return (
      <SignIn
        ended={ended}
        onSignedIn={() => {
          setEnded(false);
          setSignedIn(true);
        }}
      />
    );
  return (
    <>
      <nav>
        <strong>Private CA</strong>
        {NAV.map(([href, label]) => (
          <a key={href} href={href} class={route.startsWith(href) ? 'active' : ''}>
            {label}
          </a>
        ))}
        <button
          type="button"
          class="small"
          onClick={() => {
            session.signOut();
            setSignedIn(false);
          }}
        >
          Sign out
        </button>
      </nav>
      <main>{page(route)}</main>
    </>
  );
}

render(<App />, document.getElementById('app')!);

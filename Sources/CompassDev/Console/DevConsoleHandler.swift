import CompassHandlers
import CompassHosts
import CompassMeta
import CompassPlatform
import CompassStorage

/// Development only (`scripts/serve` without a Meta app): a login that sets the
/// `compass_session` cookie for a tenant you name, and a stand-in for Compass's
/// `/settings/integrations` page that drives the real routes from a browser.
package struct DevConsoleHandler: Handler {
    package static let name = "dev-console"
    package static let methods = ["GET", "POST"]
    package static let paths = ["/", "/settings/integrations", "/dev/login", "/dev/logout"]
    package static let servesSubpaths = true
    package let dependencies: Dependencies

    package init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }

    package func handle(_ request: CGIRequest) throws -> CGIResponse {
        guard dependencies.config.development.devConsoleEnabled else {
            throw APIError(404, "not_found", "The development console is off.")
        }
        try DevelopmentGate.check(dependencies)
        switch (request.method, request.path) {
        case ("POST", "/dev/login"):
            let form = QueryParameters(parsing: String(decoding: request.body, as: UTF8.self))
            guard let tenant = form.single("tenant")?.trimmed, Tenant.isValidId(tenant) else {
                return page(400, loginBody(error: "A tenant id is 1 to 64 of A-Z a-z 0-9 _ -."))
            }
            let lifetime: Int64 = 12 * 3600
            let token = SessionVerifier(secret: try dependencies.config.platform.sessionSecret())
                .mint(
                    tenantId: tenant, expiresAt: dependencies.clock.now.unixSeconds + lifetime, issuedAt: dependencies.clock.now.unixSeconds
                )
            var response = CGIResponse.redirect(to: "/settings/integrations")
            response.headers.append(
                ("Set-Cookie", "\(SessionVerifier.cookieName)=\(token); Path=/; HttpOnly; SameSite=Lax; Max-Age=\(lifetime)"))
            return response
        case ("POST", "/dev/logout"):
            var response = CGIResponse.redirect(to: "/dev/login")
            response.headers.append(("Set-Cookie", "\(SessionVerifier.cookieName)=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"))
            return response
        case ("GET", "/dev/login"), ("HEAD", "/dev/login"):
            return page(200, loginBody(error: nil))
        case ("GET", "/settings/integrations"), ("HEAD", "/settings/integrations"):
            return page(200, Self.settingsPage)
        case ("GET", "/"), ("HEAD", "/"):
            return .redirect(to: "/settings/integrations")
        default:
            throw APIError(404, "not_found", "No such development page.")
        }
    }

    private func page(_ status: Int, _ body: String) -> CGIResponse {
        let html = """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Compass (development)</title>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <style>\(Self.style)</style></head><body>
            <header><strong>Compass</strong> <span class="dev">development stand-in</span>
            <form method="post" action="/dev/logout" class="inline"><button id="logout">Log out</button></form></header>
            <main>\(body)</main></body></html>
            """
        return CGIResponse(
            status: status,
            headers: [
                ("Content-Type", "text/html; charset=utf-8"),
                (
                    "Content-Security-Policy",
                    "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; form-action 'self'"
                ),
            ], body: Array(html.utf8))
    }

    private func loginBody(error: String?) -> String {
        """
        <h1>Development login</h1>
        <p>Sets the <code>compass_session</code> cookie for a tenant, as Compass's own login would.</p>
        \(error.map { "<p class=\"error\">\(escapeHTML($0))</p>" } ?? "")
        <form method="post" action="/dev/login">
        <label>Tenant id <input id="login-tenant" name="tenant" value="tenant_demo" pattern="[A-Za-z0-9_-]{1,64}" required></label>
        <button id="login-submit" type="submit">Log in</button></form>
        """
    }

    static let style = """
        body{font-family:system-ui,sans-serif;margin:0;color:#1c1e21;background:#f5f6f7}
        header{background:#fff;border-bottom:1px solid #ddd;padding:.8em 1.5em;display:flex;gap:1em;align-items:center}
        .dev{color:#b35c00;font-size:.85em}.inline{margin-left:auto}main{max-width:46em;margin:2em auto;background:#fff;
        padding:1.5em 2em;border-radius:8px;box-shadow:0 1px 3px #0002}label{display:block;margin:.8em 0}
        select,input{font-size:1em;padding:.3em;margin-left:.5em}button,.button{font-size:1em;padding:.5em 1.2em;
        border-radius:6px;border:0;background:#1877f2;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
        #disconnect,#logout{background:#e4e6eb;color:#1c1e21}.error{color:#b00020}.ok{color:#0a7d32}
        table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3em;border-bottom:1px solid #eee}
        """

    static let settingsPage = """
        <h1>Integrations: Meta Conversions API</h1>
        <p id="result"></p>
        <div id="login-needed" hidden><p>Not logged in. <a href="/dev/login">Log in as a tenant</a>.</p></div>
        <div id="disconnected" hidden><p id="status-text">Meta is not connected.</p>
        <a id="connect" class="button" href="/api/connect/meta">Connect Meta</a></div>
        <div id="connected" hidden>
        <p>Status: <strong id="status"></strong> <span id="status-reason"></span></p>
        <p>Token expires <span id="expires"></span>; scopes <code id="scopes"></code>; type <span id="token-type"></span><span id="client-business"></span></p>
        <table id="accounts"><thead><tr><th>Ad account</th><th>Name</th><th>Currency</th><th>Status</th></tr></thead><tbody></tbody></table>
        <label>Ad account <select id="account"><option value="">Choose...</option></select></label>
        <label>Pixel <select id="pixel"><option value="">Choose an ad account first</option></select></label>
        <table id="routes"><thead><tr><th>Events from</th><th>go to the dataset</th></tr></thead><tbody></tbody></table>
        <label>Test event code <input id="test-code" placeholder="none (production)"></label> <span id="test-code-ends"></span>
        <p><button id="save">Save</button> <span id="saved"></span></p>
        <p><a id="reconnect" class="button" href="/api/connect/meta">Reconnect</a> <button id="disconnect">Disconnect</button></p>
        <h2>Delivery</h2>
        <p>Pixel <strong id="pixel-status">not chosen</strong> <span id="pixel-reason"></span></p>
        <table id="datasets"><thead><tr><th>Dataset</th><th>Action sources</th><th>Status</th><th>Sent</th><th>Last delivery</th><th>Quality</th></tr></thead><tbody></tbody></table>
        <p>Sent <strong id="sent">0</strong>, queued <strong id="queued">0</strong>, dead-lettered <strong id="dead">0</strong>;
        last delivery <span id="last-delivery">never</span>; last failure <span id="last-failure">none</span></p>
        <p><button id="send-test">Send test event</button> <span id="test-result"></span></p>
        <table id="coverage"><thead><tr><th>Match key</th><th>Share of our events</th></tr></thead><tbody></tbody></table>
        <h2>Event Match Quality (from Meta)</h2>
        <p id="emq-none">Not fetched yet: refresh-cron asks Meta once a pixel is chosen, then daily.</p>
        <p id="emq-fetched"></p>
        <table id="emq" hidden><thead><tr><th>Event</th><th>Score (0 to 10)</th><th>Match keys (% of events)</th><th>Diagnostics</th>
        <th>Event coverage</th><th>Browser/server dedupe</th><th>Freshness</th><th>Additional conversions</th></tr></thead><tbody></tbody></table>
        </div>
        <script>
        const $ = (id) => document.getElementById(id);
        const api = '/api/connect/meta/settings';
        const params = new URLSearchParams(location.search);
        if (params.get('connected') === 'meta') { $('result').textContent = 'Meta connected.'; $('result').className = 'ok'; }
        if (params.get('error')) { $('result').textContent = 'Connection failed: ' + params.get('error'); $('result').className = 'error'; }
        const statuses = {1: 'active', 2: 'disabled', 3: 'unsettled', 7: 'risk review', 9: 'grace period', 100: 'pending closure', 101: 'closed'};
        function option(value, text) { const o = document.createElement('option'); o.value = value; o.textContent = text; return o; }
        // Meta's action sources, each of which may have a dataset of its own; the pixel takes the others.
        const sources = \(String(decoding: JSON.encode(ConversionEvent.actionSources.sorted()), as: UTF8.self));
        let routes = {};
        let savedCode = null;
        function routeRows(pixels) {
          $('routes').tBodies[0].replaceChildren(...sources.map((source) => {
            const select = document.createElement('select');
            select.id = 'route-' + source;
            select.replaceChildren(option('', 'the pixel above'), ...pixels.map((p) => option(p.id, (p.name || p.id) + ' (' + p.id + ')')));
            select.value = routes[source] || '';
            const tr = row([source]);
            const td = document.createElement('td'); td.appendChild(select); tr.appendChild(td);
            return tr;
          }));
        }
        async function loadPixels(accountId, selected) {
          const select = $('pixel');
          select.replaceChildren(option('', accountId ? 'Loading...' : 'Choose an ad account first'));
          if (!accountId) return;
          const r = await fetch(api + '?adAccountId=' + encodeURIComponent(accountId));
          const body = await r.json();
          if (!r.ok) { select.replaceChildren(option('', body.error.message)); return; }
          select.replaceChildren(option('', 'Choose...'), ...body.pixels.map((p) => option(p.id, (p.name || p.id) + ' (' + p.id + ')' + (p.source === 'business' ? ', owned by the business' : p.source === 'shared' ? ', shared with the business' : ''))));
          if (selected) select.value = selected;
          routeRows(body.pixels);
        }
        async function load() {
          const r = await fetch(api);
          $('login-needed').hidden = r.status !== 401;
          $('disconnected').hidden = r.status !== 404;
          $('connected').hidden = !r.ok;
          if (!r.ok) return;
          const s = await r.json();
          $('status').textContent = s.status;
          $('status-reason').textContent = s.statusReason || '';
          $('expires').textContent = s.tokenExpiresAt || 'never';
          $('scopes').textContent = s.grantedScopes.join(', ');
          $('token-type').textContent = s.tokenType === 'system_user' ? 'system user (Facebook Login for Business)' : 'user';
          $('client-business').textContent = s.clientBusinessId ? ', client business ' + s.clientBusinessId : '';
          const rows = s.adAccounts.map((a) => {
            const tr = document.createElement('tr');
            for (const v of [a.id, a.name || '', a.currency || '', statuses[a.status] || String(a.status)]) {
              const td = document.createElement('td'); td.textContent = v; tr.appendChild(td);
            }
            return tr;
          });
          $('accounts').tBodies[0].replaceChildren(...rows);
          $('account').replaceChildren(option('', 'Choose...'), ...s.adAccounts.map((a) => option(a.id, (a.name || a.id) + ' (' + a.id + ')')));
          $('account').value = s.adAccountId || '';
          $('test-code').value = s.testEventCode || '';
          savedCode = s.testEventCode || null;
          $('test-code-ends').textContent = s.testEventCodeExpiresAt ? 'ends ' + s.testEventCodeExpiresAt : '';
          routes = s.datasets || {};
          $('datasets').tBodies[0].replaceChildren(...s.datasetStatus.map((d) => {
            const q = d.eventMatchQuality;
            const scores = !q ? 'not fetched yet' : q.offline ? q.offline.map((e) => e.eventName + ' ' + (e.composite && e.composite.score != null ? e.composite.score : '-')).join(', ')
              : q.events.map((e) => e.eventName + ' ' + (e.compositeScore == null ? '-' : e.compositeScore)).join(', ');
            return row([d.id, d.actionSources.join(', '), d.status + (d.statusReason ? ': ' + d.statusReason : ''), String(d.eventsSent), d.lastDeliveryAt || 'never', scores || 'no events']);
          }));
          $('pixel-status').textContent = s.pixelStatus || 'not chosen';
          $('pixel-reason').textContent = s.pixelStatusReason || '';
          const d = s.delivery;
          $('sent').textContent = d.eventsSent; $('queued').textContent = d.queued; $('dead').textContent = d.dead;
          $('last-delivery').textContent = d.lastDeliveryAt || 'never';
          $('last-failure').textContent = d.lastFailure ? d.lastFailure + ' at ' + d.lastFailureAt : 'none';
          $('coverage').tBodies[0].replaceChildren(...Object.keys(d.matchKeyCoverage).sort().map((k) => row([k, Math.round(d.matchKeyCoverage[k] * 100) + ' %'])));
          const q = s.eventMatchQuality;
          $('emq-none').hidden = !!q; $('emq').hidden = !q;
          const pct = (share) => share && share.percentage != null ? share.percentage + ' %' + (share.goalPercentage != null ? ' (goal ' + share.goalPercentage + ' %)' : '') : '-';
          $('emq-fetched').textContent = !q ? '' : (q.fetchedAt ? 'Fetched ' + q.fetchedAt + '. ' : 'Never fetched. ')
            + (q.lastFailure ? 'The last fetch failed at ' + q.lastFailure.at + ': ' + q.lastFailure.message + ' (tried again ' + q.lastFailure.retryAt + ').' : '');
          if (q) $('emq').tBodies[0].replaceChildren(...q.events.map((e) => row([e.eventName, e.compositeScore == null ? '-' : String(e.compositeScore),
            Object.keys(e.matchKeyCoverage).sort().map((k) => k + ' ' + e.matchKeyCoverage[k]).join(', '),
            (e.diagnostics || []).map((d) => (d.name || '') + ': ' + (d.description || '') + (d.solution ? ' ' + d.solution : '')).join('; ') || 'none',
            pct(e.eventCoverage),
            (e.dedupeKeys || []).map((k) => k.key + ' ' + (k.browserCoverage == null ? '-' : k.browserCoverage + ' %')).join(', ') || '-',
            e.dataFreshness ? (e.dataFreshness.uploadFrequency || '-') : '-', pct(e.additionalConversionsReported)])));
          await loadPixels(s.adAccountId, s.pixelId);
        }
        function row(values) {
          const tr = document.createElement('tr');
          for (const v of values) { const td = document.createElement('td'); td.textContent = v; tr.appendChild(td); }
          return tr;
        }
        $('send-test').addEventListener('click', async () => {
          const event = {eventName: 'Lead', eventTime: Math.floor(Date.now() / 1000), actionSource: 'system_generated',
                         eventId: 'console-test-' + Date.now(), userData: {em: 'test.lead@example.com', external_id: 'console-test'}};
          const r = await fetch('/api/connect/meta/events', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(event)});
          const s = await r.json();
          $('test-result').textContent = r.ok ? 'Test event ' + s.status + (s.fbtraceIds.length ? ' (fbtrace_id ' + s.fbtraceIds[0] + ')' : '') : s.error.message;
          $('test-result').className = r.ok && s.status === 'sent' ? 'ok' : 'error';
          await load();
        });
        $('account').addEventListener('change', (e) => loadPixels(e.target.value));
        $('save').addEventListener('click', async () => {
          const body = {adAccountId: $('account').value || null, pixelId: $('pixel').value || null};
          // Saved again, a code would start its 24 hours again: sent only when changed.
          if (($('test-code').value || null) !== savedCode) body.testEventCode = $('test-code').value || null;
          const chosen = {};
          for (const source of sources) { const select = $('route-' + source); if (select) chosen[source] = select.value || null; }
          if ($('account').value && Object.keys(chosen).length) body.datasets = chosen;
          const r = await fetch(api, {method: 'PUT', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
          const s = await r.json();
          $('saved').textContent = r.ok ? 'Saved: ' + s.adAccountId + ' / pixel ' + s.pixelId : s.error.message;
          $('saved').className = r.ok ? 'ok' : 'error';
        });
        $('disconnect').addEventListener('click', async () => {
          const r = await fetch('/api/connect/meta/disconnect', {method: 'POST'});
          const s = await r.json();
          $('result').textContent = r.ok ? 'Disconnected' + (s.revokedAtMeta ? ' and revoked at Meta.' : ' (not revoked at Meta: ' + s.revokeSkipped + ').') : s.error.message;
          await load();
        });
        load();
        </script>
        """
}

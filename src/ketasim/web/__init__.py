"""The clinic web application (FastAPI): authentication, sessions, CSRF, security headers,
server-side authorization and the audit trail. Groundwork for issue 6."""

DROP TABLE IF EXISTS pingan.login_throttle;
DROP TABLE IF EXISTS pingan.api_tokens;
DROP TABLE IF EXISTS pingan.sessions;
DROP TABLE IF EXISTS pingan.users;

//! Tokens for the doors that listen on a port (`fourk mcp --http`, `fourk studio`).

/// `bytes` random bytes from the operating system, as lower-case hex (twice as many digits).
///
/// # Errors
/// When the operating system has no randomness to give.
pub fn random_token(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no random bytes for a token: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_hex_of_the_length_asked_and_differ() {
        let (a, b) = (super::random_token(16).unwrap(), super::random_token(16).unwrap());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}

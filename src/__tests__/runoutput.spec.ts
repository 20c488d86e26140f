import { streamText } from '../runoutput';

describe('streamText', () => {
  it('passes UTF-8 text through', () => {
    expect(streamText('héllo\n', 'utf-8')).toBe('héllo\n');
    expect(streamText('plain')).toBe('plain');
  });

  it('decodes base64 output with visible NULs and replacement characters', () => {
    // "a", NUL, an invalid byte (0xff), "b"
    const encoded = btoa(String.fromCharCode(0x61, 0x00, 0xff, 0x62));
    expect(streamText(encoded, 'base64')).toBe('a\u2400\ufffdb');
  });
});

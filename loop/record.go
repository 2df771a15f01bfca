package loop

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"hash"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"
)

// The TLS record layer of an established connection (RFC 8446 §5, RFC
// 5246 §6.2), on the connection's own loop. crypto/tls runs the handshake
// (tls.go); its traffic secrets, which it writes to a key log, are all
// this layer keeps of it: two AEADs, their nonces and sequence numbers —
// about 1.6 KiB with AES-GCM, where a tls.Conn kept after its handshake
// holds 7–9 KiB. Only AEAD cipher suites are offered, so every record is
// sealed and opened the same way.

// Record types (RFC 8446 §5.1).
const (
	recordChangeCipherSpec = 20
	recordAlert            = 21
	recordHandshake        = 22
	recordApplicationData  = 23
)

const (
	recordHeaderLen = 5
	maxPlaintext    = 16384              // RFC 8446 §5.1
	maxCiphertext   = maxPlaintext + 256 // RFC 8446 §5.2 (TLS 1.2 allows 2048 more; no AEAD needs them)
	aeadTagLen      = 16
	explicitNonce   = 8 // TLS 1.2 AES-GCM's nonce sent with each record
)

// tlsSuites are the cipher suites offered for TLS 1.2: AEADs only (TLS 1.3
// has no others).
var tlsSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

var (
	errRecord      = errors.New("loop: bad TLS record")
	errRecordMAC   = errors.New("loop: TLS record fails authentication")
	errRecordSuite = errors.New("loop: TLS cipher suite not supported")
)

// tlsKeys is what a finished handshake leaves for the record layer.
type tlsKeys struct {
	version uint16
	suite   uint16
	// TLS 1.3: the application traffic secrets.
	clientSecret, serverSecret []byte
	// TLS 1.2: the master secret and the hello randoms.
	master                     []byte
	clientRandom, serverRandom []byte
}

// records is the record layer of one connection. in opens what the client
// sends, out seals what the server sends.
type records struct {
	version       uint16
	in, out       cipher.AEAD // in is nil while parked (parkIn)
	inKey         []byte      // in's key, to build it again after parkIn
	chacha        bool        // the suite is ChaCha20-Poly1305 (else AES-GCM)
	inUsed        bool        // a record was opened since the last parkIn
	inIV, outIV   [12]byte    // TLS 1.2 AES-GCM: the 4-byte salt, then zeros
	inSeq, outSeq uint64
	explicit      bool // TLS 1.2 AES-GCM: an explicit nonce leads each record

	// Scratch for a record's nonce and additional data: passed to the
	// AEAD, an interface, a local array would escape and be allocated per
	// record.
	nonceBuf [12]byte
	adBuf    [13]byte

	// TLS 1.3, for KeyUpdate: the suite's hash and the current secrets.
	hash                func() hash.Hash
	suite               uint16
	inSecret, outSecret []byte
}

// newRecords builds the record layer keys describes. The sequence numbers
// start where the handshake left them: at 0 for TLS 1.3's application
// keys, at 1 for TLS 1.2, whose Finished messages took the first.
func newRecords(k *tlsKeys) (*records, error) {
	r := &records{version: k.version, suite: k.suite}
	keyLen, ivLen, h, chacha, err := suiteParams(k.version, k.suite)
	if err != nil {
		return nil, err
	}
	r.hash = h
	var inKey, outKey, inIV, outIV []byte
	switch k.version {
	case tls.VersionTLS13:
		r.inSecret, r.outSecret = k.clientSecret, k.serverSecret
		inKey, inIV = trafficKey(h, k.clientSecret, keyLen)
		outKey, outIV = trafficKey(h, k.serverSecret, keyLen)
	case tls.VersionTLS12:
		seed := append(append([]byte(nil), k.serverRandom...), k.clientRandom...)
		block := prf12(h, k.master, "key expansion", seed, 2*keyLen+2*ivLen)
		inKey, outKey = block[:keyLen], block[keyLen:2*keyLen]
		inIV, outIV = block[2*keyLen:2*keyLen+ivLen], block[2*keyLen+ivLen:]
		r.explicit = !chacha
		r.inSeq, r.outSeq = 1, 1
	default:
		return nil, errRecordSuite
	}
	r.inKey, r.chacha = inKey, chacha
	if r.in, err = newAEAD(inKey, chacha); err != nil {
		return nil, err
	}
	if r.out, err = newAEAD(outKey, chacha); err != nil {
		return nil, err
	}
	copy(r.inIV[:], inIV)
	copy(r.outIV[:], outIV)
	return r, nil
}

// suiteParams are a suite's key and IV lengths, its hash and whether it is
// ChaCha20-Poly1305.
func suiteParams(version, suite uint16) (keyLen, ivLen int, h func() hash.Hash, chacha bool, err error) {
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256:
		return 16, 12, sha256.New, false, nil
	case tls.TLS_AES_256_GCM_SHA384:
		return 32, 12, sha512.New384, false, nil
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		return 32, 12, sha256.New, true, nil
	case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:
		return 16, 4, sha256.New, false, nil
	case tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return 32, 4, sha512.New384, false, nil
	case tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return 32, 12, sha256.New, true, nil
	}
	return 0, 0, nil, false, errRecordSuite
}

func newAEAD(key []byte, chacha bool) (cipher.AEAD, error) {
	if chacha {
		return chacha20poly1305.New(key)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// trafficKey derives a TLS 1.3 record key and IV from a traffic secret
// (RFC 8446 §7.3).
func trafficKey(h func() hash.Hash, secret []byte, keyLen int) (key, iv []byte) {
	return expandLabel(h, secret, "key", keyLen), expandLabel(h, secret, "iv", 12)
}

// expandLabel is HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
func expandLabel(h func() hash.Hash, secret []byte, label string, n int) []byte {
	info := make([]byte, 0, 4+6+len(label))
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, 0)
	out, err := hkdf.Expand(h, secret, string(info), n)
	if err != nil {
		panic("loop: HKDF-Expand-Label: " + err.Error()) // n is a key's length: never too long
	}
	return out
}

// prf12 is the TLS 1.2 PRF, P_hash (RFC 5246 §5).
func prf12(h func() hash.Hash, secret []byte, label string, seed []byte, n int) []byte {
	ls := append([]byte(label), seed...)
	mac := hmac.New(h, secret)
	a := ls
	out := make([]byte, 0, n+mac.Size())
	for len(out) < n {
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(nil)
		mac.Reset()
		mac.Write(a)
		mac.Write(ls)
		out = mac.Sum(out)
	}
	return out[:n]
}

// nonce returns the AEAD nonce of record number seq, in r.nonceBuf: iv
// XOR seq (RFC 8446 §5.3, RFC 7905), or TLS 1.2 AES-GCM's salt followed
// by seq.
func (r *records) nonce(iv *[12]byte, seq uint64) []byte {
	n := &r.nonceBuf
	*n = *iv
	if r.explicit {
		binary.BigEndian.PutUint64(n[4:], seq)
		return n[:]
	}
	for i := range 8 {
		n[4+i] ^= byte(seq >> (56 - 8*i))
	}
	return n[:]
}

// additional returns TLS 1.2's additional data of a record (RFC 5246
// §6.2.3.3), in r.adBuf.
func (r *records) additional(seq uint64, typ byte, n int) []byte {
	ad := &r.adBuf
	binary.BigEndian.PutUint64(ad[:8], seq)
	ad[8], ad[9], ad[10] = typ, 3, 3
	binary.BigEndian.PutUint16(ad[11:], uint16(n))
	return ad[:]
}

// recordLen returns the length of the whole record at the start of b, or 0
// if its header has not arrived; an error for a header no peer sends.
func recordLen(b []byte) (int, error) {
	if len(b) < recordHeaderLen {
		return 0, nil
	}
	n := int(binary.BigEndian.Uint16(b[3:5]))
	if b[0] < recordChangeCipherSpec || b[0] > recordApplicationData || b[1] != 3 || n > maxCiphertext+2048 {
		return 0, errRecord
	}
	return recordHeaderLen + n, nil
}

// open authenticates and decrypts the whole record rec in place and
// returns its content type and plaintext, which aliases rec.
func (r *records) open(rec []byte) (typ byte, plain []byte, err error) {
	if r.in == nil {
		if r.in, err = newAEAD(r.inKey, r.chacha); err != nil {
			return 0, nil, err
		}
	}
	r.inUsed = true
	hdr, body := rec[:recordHeaderLen], rec[recordHeaderLen:]
	seq := r.inSeq
	r.inSeq++
	if r.version == tls.VersionTLS13 {
		if hdr[0] != recordApplicationData || len(body) < aeadTagLen+1 || len(body) > maxCiphertext {
			return 0, nil, errRecord
		}
		p, err := r.in.Open(body[:0], r.nonce(&r.inIV, seq), body, hdr)
		if err != nil {
			return 0, nil, errRecordMAC
		}
		// The content type is the last byte that is not padding.
		i := len(p) - 1
		for i >= 0 && p[i] == 0 {
			i--
		}
		if i < 0 {
			return 0, nil, errRecord
		}
		return p[i], p[:i], nil
	}
	var n []byte
	if r.explicit {
		if len(body) < explicitNonce+aeadTagLen {
			return 0, nil, errRecord
		}
		r.nonceBuf = r.inIV
		copy(r.nonceBuf[4:], body[:explicitNonce])
		n = r.nonceBuf[:]
		body = body[explicitNonce:]
	} else {
		if len(body) < aeadTagLen {
			return 0, nil, errRecord
		}
		n = r.nonce(&r.inIV, seq)
	}
	p, err := r.in.Open(body[:0], n, body, r.additional(seq, hdr[0], len(body)-aeadTagLen))
	if err != nil {
		return 0, nil, errRecordMAC
	}
	return hdr[0], p, nil
}

// seal appends plain to dst as records of type typ, each of at most
// maxPlaintext bytes, and returns dst.
func (r *records) seal(dst, plain []byte, typ byte) []byte {
	for first := true; first || len(plain) > 0; first = false {
		chunk := plain[:min(len(plain), maxPlaintext)]
		plain = plain[len(chunk):]
		dst = r.sealOne(dst, chunk, typ)
	}
	return dst
}

// sealOne appends one record holding plain.
func (r *records) sealOne(dst, plain []byte, typ byte) []byte {
	seq := r.outSeq
	r.outSeq++
	h := len(dst)
	if r.version == tls.VersionTLS13 {
		n := len(plain) + 1 + aeadTagLen
		dst = slices.Grow(dst, recordHeaderLen+n)
		dst = append(dst, recordApplicationData, 3, 3, byte(n>>8), byte(n))
		start := len(dst)
		dst = append(dst, plain...)
		dst = append(dst, typ)
		sealed := r.out.Seal(dst[start:start], r.nonce(&r.outIV, seq), dst[start:], dst[h:start])
		return dst[:start+len(sealed)]
	}
	extra := 0
	if r.explicit {
		extra = explicitNonce
	}
	n := extra + len(plain) + aeadTagLen
	dst = slices.Grow(dst, recordHeaderLen+n)
	dst = append(dst, typ, 3, 3, byte(n>>8), byte(n))
	nonce := r.nonce(&r.outIV, seq)
	if r.explicit {
		dst = append(dst, nonce[4:]...)
	}
	start := len(dst)
	dst = append(dst, plain...)
	sealed := r.out.Seal(dst[start:start], nonce, dst[start:], r.additional(seq, typ, len(plain)))
	return dst[:start+len(sealed)]
}

// keyUpdate takes the client's KeyUpdate (RFC 8446 §4.6.3): the keys of
// what it sends from now on are the next generation's. It reports whether
// the client asks for the server's to be updated too, which the caller
// does with updateOut after sending its own KeyUpdate.
func (r *records) keyUpdate(msg []byte) (requested bool, err error) {
	// handshake type 24, length 1, request_update 0 or 1
	if r.version != tls.VersionTLS13 || len(msg) != 5 || msg[0] != 24 || msg[1] != 0 || msg[2] != 0 || msg[3] != 1 || msg[4] > 1 {
		return false, errRecord
	}
	keyLen, _, _, chacha, _ := suiteParams(r.version, r.suite)
	r.inSecret = expandLabel(r.hash, r.inSecret, "traffic upd", r.hash().Size())
	key, iv := trafficKey(r.hash, r.inSecret, keyLen)
	if r.in, err = newAEAD(key, chacha); err != nil {
		return false, err
	}
	r.inKey = key
	copy(r.inIV[:], iv)
	r.inSeq = 0
	return msg[4] == 1, nil
}

// parkIn lets the opening cipher go if no record was opened since the last
// call: the loop's sweep calls it every second, so a connection whose
// client has sent nothing for a second or two keeps only its key (an
// AES-GCM state is ~700 B; most sockets only receive, and their client
// speaks once in activity_timeout). open builds it again, once, when a
// record comes.
func (r *records) parkIn() {
	if !r.inUsed {
		r.in = nil
	}
	r.inUsed = false
}

// updateOut sends the server's KeyUpdate, appended to dst under the keys
// of now, and moves what it sends after to the next generation's keys.
func (r *records) updateOut(dst []byte) ([]byte, error) {
	dst = r.sealOne(dst, []byte{24, 0, 0, 1, 0}, recordHandshake)
	keyLen, _, _, chacha, _ := suiteParams(r.version, r.suite)
	r.outSecret = expandLabel(r.hash, r.outSecret, "traffic upd", r.hash().Size())
	key, iv := trafficKey(r.hash, r.outSecret, keyLen)
	var err error
	if r.out, err = newAEAD(key, chacha); err != nil {
		return dst, err
	}
	copy(r.outIV[:], iv)
	r.outSeq = 0
	return dst, nil
}

package usersig

import "testing"

func BenchmarkVerify(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(vecA, vecAppID, "xiaojun", vecKey, 1700000100); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(vecA); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGen(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Gen(vecAppID, vecKey, "xiaojun", 15552000, 1700000000); err != nil {
			b.Fatal(err)
		}
	}
}

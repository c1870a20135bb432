package x509lite

// time reads a UTCTime or GeneralizedTime in the DER form RFC 5280
// requires (seconds present, "Z", no fraction) and returns epoch seconds.
// Times before 1970 read as 0.
func (r *reader) time() uint64 {
	var s []byte
	var year uint64
	switch r.peek() {
	case tagUTCTime:
		s = r.content(tagUTCTime)
		if len(s) != 13 {
			r.fail(ErrMalformed)
			return 0
		}
		year = digits(s[:2])
		if year < 50 {
			year += 2000
		} else {
			year += 1900
		}
		s = s[2:]
	case tagGeneralizedTime:
		s = r.content(tagGeneralizedTime)
		if len(s) != 15 {
			r.fail(ErrMalformed)
			return 0
		}
		year = digits(s[:4])
		s = s[4:]
	default:
		r.fail(ErrMalformed)
		return 0
	}
	if r.err != nil {
		return 0
	}
	// s is MMDDHHMMSSZ.
	if s[10] != 'Z' {
		r.fail(ErrMalformed)
		return 0
	}
	mon, day := digits(s[0:2]), digits(s[2:4])
	hh, mm, ss := digits(s[4:6]), digits(s[6:8]), digits(s[8:10])
	if year == bad || mon == bad || day == bad || hh == bad || mm == bad || ss == bad ||
		mon < 1 || mon > 12 || day < 1 || day > daysIn(year, mon) || hh > 23 || mm > 59 || ss > 59 {
		r.fail(ErrMalformed)
		return 0
	}
	if year < 1970 {
		return 0
	}
	return daysSinceEpoch(year, mon, day)*86400 + hh*3600 + mm*60 + ss
}

// bad is what digits returns for a non-digit.
const bad = ^uint64(0)

// digits parses decimal digits (at most 4).
func digits(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return bad
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

func isLeap(y uint64) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// daysIn returns the number of days of month m (1..12) of year y.
func daysIn(y, m uint64) uint64 {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysSinceEpoch returns the days from 1970-01-01 to y-m-d (y >= 1970),
// with the civil-from-days algorithm of H. Hinnant.
func daysSinceEpoch(y, m, d uint64) uint64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

/// The run-length coding of 8- and 4-bit Windows bitmaps (RLE8, RLE4), decoded as Pillow's
/// `BmpRleDecoder` decodes it, so that synthd reads such a bitmap as PyTorch's ImageFolder does,
/// quirks included: a run longer than its row is cut at the row's end, a literal run may run on
/// into the next row, a delta jump of (right, up) skips right + up x width pixels, and every
/// pixel a code skips (an end of line, a delta) is palette index 0. The stream is a list of
/// two-byte codes: (n > 0, v) repeats v n times (RLE4: its two nibbles in turn); (0, 0) ends
/// the line; (0, 1) ends the bitmap; (0, 2, right, up) jumps; (0, n >= 3, ...) gives n indices
/// literally, padded to an even file position.
enum RunLengthBitmap {
    /// The image's `width` x `height` palette indices in the file's row order (bottom-up for a
    /// positive height), from the codes at `start`; nil when they end before the image is
    /// complete, which Pillow refuses ("not enough image data").
    static func indices(_ bytes: [UInt8], from start: Int, width: Int, height: Int, fourBit: Bool) -> [UInt8]? {
        let total = width * height
        var data: [UInt8] = []
        data.reserveCapacity(total)
        var x = 0, at = start
        decoding: while data.count < total {
            guard at + 2 <= bytes.count else { break }
            let count = Int(bytes[at]), value = bytes[at + 1]
            at += 2
            if count > 0 {
                let n = x + count > width ? max(0, width - x) : count
                if fourBit {
                    for i in 0..<n { data.append(i % 2 == 0 ? value >> 4 : value & 0x0F) }
                } else {
                    data.append(contentsOf: repeatElement(value, count: n))
                }
                x += n
                continue
            }
            switch value {
            case 0:  // end of line
                while data.count % width != 0 { data.append(0) }
                x = 0
            case 1:  // end of bitmap
                break decoding
            case 2:  // delta
                guard at + 2 <= bytes.count else { break decoding }
                let right = Int(bytes[at]), up = Int(bytes[at + 1])
                at += 2
                data.append(contentsOf: repeatElement(0, count: min(total - data.count, right + up * width)))
                x = data.count % width
            default:  // literal
                let wanted = min(total - data.count, Int(value))
                let length = fourBit ? (wanted + 1) / 2 : wanted
                let read = bytes[at..<min(bytes.count, at + length)]
                at += read.count
                if fourBit {
                    for (i, byte) in read.enumerated() {
                        data.append(byte >> 4)
                        if i * 2 + 1 < wanted { data.append(byte & 0x0F) }
                    }
                } else {
                    data.append(contentsOf: read)
                }
                if read.count < length || data.count == total { break decoding }
                x += Int(value)
                if at % 2 != 0 { at += 1 }
            }
        }
        // A repeated run after a literal one that ran on can pass the end: the rest is unused.
        return data.count >= total ? Array(data.prefix(total)) : nil
    }
}

import Foundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// An element of an S3 XML response: name, text, children. S3's responses are small documents
/// (a list page is at most 1000 keys), parsed whole.
struct S3XMLElement: Sendable {
    var name: String
    var text = ""
    var children: [S3XMLElement] = []

    /// The first descendant reached by `path` of child names.
    func first(_ path: String...) -> S3XMLElement? {
        var element = self
        for name in path {
            guard let child = element.children.first(where: { $0.name == name }) else { return nil }
            element = child
        }
        return element
    }

    func all(_ name: String) -> [S3XMLElement] {
        children.filter { $0.name == name }
    }

    /// Parses a document; `nil` if it is not XML.
    static func parse(_ data: [UInt8]) -> S3XMLElement? {
        let delegate = TreeBuilder()
        let parser = XMLParser(data: Data(data))
        parser.delegate = delegate
        guard parser.parse(), let root = delegate.root else { return nil }
        return root
    }
}

private final class TreeBuilder: NSObject, XMLParserDelegate {
    var stack: [S3XMLElement] = []
    var root: S3XMLElement?

    func parser(
        _ parser: XMLParser,
        didStartElement elementName: String,
        namespaceURI: String?,
        qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        stack.append(S3XMLElement(name: elementName))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if !stack.isEmpty { stack[stack.count - 1].text += string }
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        guard let element = stack.popLast() else { return }
        if stack.isEmpty {
            root = element
        } else {
            stack[stack.count - 1].children.append(element)
        }
    }
}

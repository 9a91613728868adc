package storage

import (
	"bytes"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
)

// protobufMagic prefixes every value the protobuf serializer writes.
var protobufMagic = []byte{0x6b, 0x38, 0x73, 0x00}

// ProtobufCodec returns the codec values are stored with: Kubernetes'
// protobuf envelope for types that have a protobuf encoding, JSON for those
// that do not (custom types). Decoding accepts both. Objects are stored with
// apiVersion/kind of gv and decoded with them set.
func ProtobufCodec(scheme *runtime.Scheme, gv schema.GroupVersion) runtime.Codec {
	return &storageCodec{
		scheme: scheme,
		gv:     gv,
		pb:     protobuf.NewSerializer(scheme, scheme),
		json:   json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{}),
	}
}

type storageCodec struct {
	scheme *runtime.Scheme
	gv     schema.GroupVersion
	pb     *protobuf.Serializer
	json   *json.Serializer
}

var _ runtime.Codec = (*storageCodec)(nil)

// Encode writes obj, setting its apiVersion/kind first when empty.
func (c *storageCodec) Encode(obj runtime.Object, w io.Writer) error {
	if obj.GetObjectKind().GroupVersionKind().Empty() {
		kinds, _, err := c.scheme.ObjectKinds(obj)
		if err != nil {
			return fmt.Errorf("encoding %T: %w", obj, err)
		}
		gvk := kinds[0]
		for _, k := range kinds {
			if k.GroupVersion() == c.gv {
				gvk = k
				break
			}
		}
		obj.GetObjectKind().SetGroupVersionKind(gvk)
	}
	if b, ok := w.(*bytes.Buffer); ok && b.Len() == 0 {
		// runtime.Encode's buffer: write into it and spare a copy.
		if err := c.pb.Encode(obj, b); err == nil {
			return nil
		}
		b.Reset()
		return c.json.Encode(obj, b)
	}
	var buf bytes.Buffer
	if err := c.pb.Encode(obj, &buf); err == nil {
		_, err = w.Write(buf.Bytes())
		return err
	}
	return c.json.Encode(obj, w)
}

// Decode reads data into into (or a new object of the stored kind).
func (c *storageCodec) Decode(data []byte, defaults *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	if bytes.HasPrefix(data, protobufMagic) {
		return c.pb.Decode(data, defaults, into)
	}
	return c.json.Decode(data, defaults, into)
}

func (c *storageCodec) Identifier() runtime.Identifier {
	return runtime.Identifier("skiff-storage-" + c.gv.String())
}

"""The ReNom CNN tutorial, cell by cell, with fastconv in
ReNom's place. Only the imports and the data source differ from the notebook; pictures are saved
as PNG files instead of shown. Run: python examples/tutorial.py"""
# In [1]:
import fastconv as rm
from fastconv import set_cuda_active
import numpy as np
from fastconv.datasets import load_mnist  # in place of sklearn's retired fetch_mldata
from tqdm import tqdm
from sklearn.preprocessing import LabelBinarizer
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.preprocessing import MinMaxScaler

# In [2]: GPU activation (warns and stays on the CPU where no GPU is usable)
set_cuda_active(True)

# In [3]: fetching data -- the full MNIST where it can be had, else the offline sample
_mnist = load_mnist(scale="raw")
print("data:", _mnist.source)
mnist = {"data": np.concatenate([_mnist.train_images, _mnist.test_images]).reshape(-1, 784),
         "target": np.concatenate([_mnist.train_labels, _mnist.test_labels])}

# In [4]:
cnn = rm.Sequential([
    rm.Conv2d(channel=32, filter=3, padding=1),
    rm.Relu(),
    rm.Conv2d(channel=64, filter=3, padding=1),
    rm.Relu(),
    rm.MaxPool2d(filter=2, stride=2),
    rm.Dropout(0.5),
    rm.Flatten(),
    rm.Dense(128),
    rm.Relu(),
    rm.Dense(10),
])

# In [5]:
data = mnist['data']
targets = mnist['target']
train_num = int(0.8 * len(data))
train_data = np.expand_dims(data[:train_num].reshape(train_num, 28, 28), axis=1)
test_data = np.expand_dims(data[train_num:].reshape(len(data) - train_num, 28, 28), axis=1)
train_targets = targets[:train_num]
train_targets = LabelBinarizer().fit_transform(train_targets).astype(np.float32)
test_targets = targets[train_num:]
test_targets = LabelBinarizer().fit_transform(test_targets).astype(np.float32)

# In [6]:
batch_size = 64
epochs = 10
optimizer = rm.Sgd(lr=0.001)
N = train_num
for epoch in range(epochs):
    perm = np.random.permutation(N)
    loss = 0
    test_loss = 0
    bar = tqdm(range(N//batch_size))
    for j in range(N//batch_size):
        train_batch = train_data[perm[j*batch_size:(j+1)*batch_size]]
        train_targets_batch = train_targets[perm[j*batch_size:(j+1)*batch_size]]
        with cnn.train():
            l = rm.softmax_cross_entropy(cnn(train_batch), train_targets_batch)
        grad = l.grad()
        grad.update(optimizer)
        bar.set_description("epoch {:03d} train loss:{:6.4f} ".format(epoch, float(l.as_ndarray())))
        bar.update(1)
        loss += l.as_ndarray()
    for k in range(len(test_data)//batch_size):
        test_batch = test_data[k*batch_size:(k+1)*batch_size]
        test_targets_batch = test_targets[k*batch_size:(k+1)*batch_size]
        test_l = rm.softmax_cross_entropy(cnn(test_batch), test_targets_batch)
        test_loss += test_l.as_ndarray()
    bar.set_description("epoch {:03d} avg loss:{:6.4f} val loss:{:6.4f}".format(epoch, float((loss/(j+1))), float((test_loss/(k+1)))))
    bar.update(0)
    bar.refresh()
    bar.close()

# In [7]: kernel visualisation
W = cnn._layers[0].params.w
nb_filter, nb_channel, h, w = W.shape
for i in range(nb_filter):
    im = W[i, 0]
    scalar = MinMaxScaler(feature_range=(0, 255))
    im = scalar.fit_transform(im)
    plt.subplot(4, 8, i+1)
    plt.imshow(im, cmap='gray')
plt.savefig("tutorial_kernels.png")
plt.close()

# In [18]:
print('Original Image')
x = test_data[:1]
t = cnn._layers[0](x)
nb_filter, nb_channel, h, w = t.shape
plt.imshow(x[0][0], cmap='gray')
plt.savefig("tutorial_original.png")
plt.close()

# In [19]:
print('Feature maps after the first convolutional layer')
for i in range(nb_channel):
    im = t[0, i, :, :]
    scalar = MinMaxScaler(feature_range=(0, 255))
    im = scalar.fit_transform(im)
    plt.subplot(4, 8, i+1)
    plt.imshow(im, cmap='gray')
plt.savefig("tutorial_feature_maps.png")
plt.close()
